using System.Collections.Concurrent;
using System.Text;
using OnAccess.Tests;

namespace OnAccess.Core.Tests;

/// <summary>Flags the EICAR test string by content, read through the descriptor it is given.</summary>
internal class EicarScanner : IScanner
{
    public const string Eicar = @"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    private int _inFlight;
    private int _peak;

    public ConcurrentQueue<ScanRequest> Requests { get; } = new();

    public TimeSpan Delay { get; set; }

    /// <summary>Spend <see cref="Delay"/> blocking the calling thread, as a synchronous engine would.</summary>
    public bool BlockThread { get; set; }

    public int Peak => Volatile.Read(ref _peak);

    public virtual async ValueTask<ScanResult> ScanAsync(ScanRequest request, CancellationToken cancellationToken)
    {
        _ = request.Path; // looked up during the scan: once the access is decided, its descriptor is closed
        Requests.Enqueue(request);
        var now = Interlocked.Increment(ref _inFlight);
        int peak;
        while (now > (peak = Volatile.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, now, peak) != peak)
        {
        }

        try
        {
            if (Delay > TimeSpan.Zero && BlockThread)
            {
                Thread.Sleep(Delay);
            }
            else if (Delay > TimeSpan.Zero)
            {
                await Task.Delay(Delay, cancellationToken);
            }

            var buffer = new byte[64 * 1024];
            var n = RandomAccess.Read(request.File, buffer, 0);
            return Encoding.ASCII.GetString(buffer, 0, n).Contains(Eicar, StringComparison.Ordinal)
                ? ScanResult.Infected("Eicar-Test-Signature")
                : ScanResult.Clean;
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }
}

public enum Fault
{
    Throws,
    Hangs,
    ReturnsError,
}

/// <summary>Fails every scan in one way, counting attempts.</summary>
internal sealed class FaultyScanner(Fault fault) : IScanner
{
    private int _attempts;

    public int Attempts => Volatile.Read(ref _attempts);

    public async ValueTask<ScanResult> ScanAsync(ScanRequest request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _attempts);
        switch (fault)
        {
            case Fault.Throws:
                throw new InvalidOperationException("the scanner broke");
            case Fault.Hangs:
                await Task.Delay(Timeout.Infinite, CancellationToken.None); // ignores cancellation on purpose
                return ScanResult.Clean;
            default:
                return ScanResult.Error("the engine said no");
        }
    }
}

/// <summary>Opens other files in the protected directory by path while scanning (as a careless scanner would).</summary>
internal sealed class PathReadingScanner(string neighbour) : EicarScanner
{
    public override async ValueTask<ScanResult> ScanAsync(ScanRequest request, CancellationToken cancellationToken)
    {
        _ = await File.ReadAllTextAsync(neighbour, cancellationToken);
        return await base.ScanAsync(request, cancellationToken);
    }
}

/// <summary>An EICAR scanner whose signature generation the test changes.</summary>
internal sealed class GenerationScanner : EicarScanner, ISignatureGeneration
{
    private long _generation = 1;

    public long Generation => Interlocked.Read(ref _generation);

    public void NextGeneration() => Interlocked.Increment(ref _generation);

    public int ScansOf(string path) => Requests.Count(r => r.Path == path);
}

/// <summary>Opens a neighbour in the protected directory by path, synchronously, on the thread that calls it.</summary>
internal sealed class SyncPathReadingScanner(string neighbour) : IScanner
{
    public ValueTask<ScanResult> ScanAsync(ScanRequest request, CancellationToken cancellationToken)
    {
        _ = File.ReadAllText(neighbour);
        return ValueTask.FromResult(ScanResult.Clean);
    }
}

/// <summary>Blocks the calling thread while scanning one file, until the test opens the gate.</summary>
internal sealed class BlockingScanner(string blocked) : IScanner, IDisposable
{
    private readonly ManualResetEventSlim _gate = new();

    public SemaphoreSlim Entered { get; } = new(0);

    public void Open() => _gate.Set();

    public ValueTask<ScanResult> ScanAsync(ScanRequest request, CancellationToken cancellationToken)
    {
        if (request.Path == blocked)
        {
            Entered.Release();
            _gate.Wait(KernelTestSupport.Timeout, CancellationToken.None);
        }

        return ValueTask.FromResult(ScanResult.Clean);
    }

    public void Dispose()
    {
        _gate.Dispose();
        Entered.Dispose();
    }
}

/// <summary>Every scan waits (asynchronously) until the test opens the gate, then finds the file clean.</summary>
internal sealed class GatedScanner : IScanner, IDisposable
{
    private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _entered;

    /// <summary>How many scans have started.</summary>
    public int Entered => Volatile.Read(ref _entered);

    public void Open() => _gate.TrySetResult();

    public async ValueTask<ScanResult> ScanAsync(ScanRequest request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _entered);
        await _gate.Task.WaitAsync(KernelTestSupport.Timeout, CancellationToken.None);
        return ScanResult.Clean;
    }

    public void Dispose() => _gate.TrySetResult();
}
