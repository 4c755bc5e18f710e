using BenchmarkDotNet.Attributes;

namespace OnAccess.Benchmarks;

/// <summary>The user-space verdict cache's hit path: the lookup an uncached-in-kernel open pays.</summary>
[MemoryDiagnoser]
public class VerdictCacheBenchmarks
{
    private readonly VerdictCache _cache = new(65_536);
    private VerdictKey[] _keys = [];

    [GlobalSetup]
    public void Setup()
    {
        _keys = [.. Enumerable.Range(0, 1024).Select(i => new VerdictKey(2049, (ulong)(1000 + i), 4096, 1_700_000_000_000_000_000 + i, 1_700_000_000_000_000_000 + i, 1))];
        foreach (var key in _keys)
        {
            _cache.Add(key);
        }
    }

    [Benchmark(OperationsPerInvoke = 1024, Description = "cache hit")]
    public int Hit()
    {
        var hits = 0;
        foreach (var key in _keys)
        {
            hits += _cache.Contains(key) ? 1 : 0;
        }

        return hits;
    }
}
