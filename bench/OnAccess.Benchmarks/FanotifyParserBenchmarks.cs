using System.Buffers;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using OnAccess.Fanotify;

namespace OnAccess.Benchmarks;

/// <summary>
/// Parsing fanotify records from a 64 KiB-class read buffer: the consumer's per-event cost.
/// One operation parses <see cref="EventsPerBuffer"/> records, so events/s = EventsPerBuffer / mean.
/// </summary>
[MemoryDiagnoser]
public class FanotifyParserBenchmarks
{
    public const int EventsPerBuffer = 2730; // 2730 × 24 bytes: one 64 KiB read

    private ReadOnlySequence<byte> _buffer;

    [GlobalSetup]
    public void Setup()
    {
        var bytes = new byte[EventsPerBuffer * 24];
        for (var i = 0; i < EventsPerBuffer; i++)
        {
            // struct fanotify_event_metadata: event_len, vers, reserved, metadata_len, mask, fd, pid (native endianness)
            var record = bytes.AsSpan(i * 24, 24);
            MemoryMarshal.Write(record, 24u);
            record[4] = 3;
            MemoryMarshal.Write(record[6..], (ushort)24);
            MemoryMarshal.Write(record[8..], 0x10000UL);
            MemoryMarshal.Write(record[16..], 100 + i);
            MemoryMarshal.Write(record[20..], 4242);
        }

        _buffer = new ReadOnlySequence<byte>(bytes);
    }

    [Benchmark(OperationsPerInvoke = EventsPerBuffer, Description = "parse one fanotify record")]
    public long ParseRecords()
    {
        var reader = new SequenceReader<byte>(_buffer);
        long sum = 0;
        while (FanotifyEventParser.TryReadEvent(ref reader, out var record, out _))
        {
            sum += record.Fd;
        }

        return sum;
    }
}
