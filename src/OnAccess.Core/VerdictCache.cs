using System.Runtime.CompilerServices;
using OnAccess.Fanotify;

namespace OnAccess;

/// <summary>What identifies one version of one file under one set of signatures.</summary>
internal readonly record struct VerdictKey(ulong Device, ulong Inode, long Size, long ModifiedTimeNs, long ChangedTimeNs, long Generation)
{
    public static VerdictKey From(in FileIdentity identity, long generation) =>
        new(identity.Device, identity.Inode, identity.Size, identity.ModifiedTimeNs, identity.ChangedTimeNs, generation);
}

/// <summary>
/// The keys of files found clean (device, inode, size, mtime, ctime, signature generation), for what the kernel's
/// ignore marks do not hold (notification mode, files beyond the kernel cache). Bounded and set-associative: a key
/// hashes to one bucket of <see cref="Ways"/> slots, replaced CLOCK-style. The hit path takes no lock and allocates
/// nothing: each bucket has a sequence number that a writer makes odd (by compare-and-swap, so writers exclude each
/// other, <see cref="Clear"/> included) while it writes; a reader reads the sequence, the slots, a full fence (so on
/// weak memory models the slot reads cannot pass the second sequence read), then the sequence again, and takes a
/// change (or an odd value) as a miss. Only clean verdicts are stored, and only under the rules of
/// <see cref="CleanVerdicts"/>; the signature generation is part of the key.
/// </summary>
internal sealed class VerdictCache
{
    public const int Ways = 4;

    private readonly Bucket[] _buckets;
    private readonly int _mask;

    public VerdictCache(int capacity)
    {
        var buckets = (int)Math.Max(1, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(Ways, capacity) / Ways));
        _buckets = new Bucket[buckets];
        _mask = buckets - 1;
    }

    public int Capacity => _buckets.Length * Ways;

    public bool Contains(in VerdictKey key)
    {
        ref var bucket = ref _buckets[Index(key)];
        var before = Volatile.Read(ref bucket.Sequence);
        if ((before & 1) != 0)
        {
            return false;
        }

        var found = Match(ref bucket, key) >= 0;
        Interlocked.MemoryBarrier(); // the slot reads above complete before the sequence is read again
        if (!found || Volatile.Read(ref bucket.Sequence) != before)
        {
            return false;
        }

        bucket.Referenced = 1; // a benign race: CLOCK only needs a hint
        return true;
    }

    public void Add(in VerdictKey key)
    {
        ref var bucket = ref _buckets[Index(key)];
        var sequence = Volatile.Read(ref bucket.Sequence);
        if ((sequence & 1) != 0 || Interlocked.CompareExchange(ref bucket.Sequence, sequence + 1, sequence) != sequence)
        {
            return; // another writer is in this bucket: skipping one insert is harmless
        }

        if (Match(ref bucket, key) < 0)
        {
            var victim = bucket.Hand;
            for (var i = 0; i < Ways; i++)
            {
                var slot = (bucket.Hand + i) % Ways;
                if (!bucket.Slots[slot].Used)
                {
                    victim = slot;
                    break;
                }
            }

            bucket.Slots[victim] = new Slot(key);
            bucket.Hand = (victim + 1) % Ways;
        }

        Volatile.Write(ref bucket.Sequence, sequence + 2);
    }

    /// <summary>Empties every bucket, each under its writer's sequence like any other write.</summary>
    public void Clear()
    {
        for (var i = 0; i < _buckets.Length; i++)
        {
            ref var bucket = ref _buckets[i];
            var spin = default(SpinWait);
            int sequence;
            while (((sequence = Volatile.Read(ref bucket.Sequence)) & 1) != 0 || Interlocked.CompareExchange(ref bucket.Sequence, sequence + 1, sequence) != sequence)
            {
                spin.SpinOnce();
            }

            bucket.Slots = default;
            Volatile.Write(ref bucket.Sequence, sequence + 2);
        }
    }

    private static int Match(ref Bucket bucket, in VerdictKey key)
    {
        for (var i = 0; i < Ways; i++)
        {
            ref readonly var slot = ref bucket.Slots[i];
            if (slot.Used && slot.Key == key)
            {
                return i;
            }
        }

        return -1;
    }

    private int Index(in VerdictKey key)
    {
        var h = HashCode.Combine(key.Device, key.Inode, key.Size, key.ModifiedTimeNs, key.ChangedTimeNs, key.Generation);
        return h & _mask;
    }

    private readonly struct Slot(VerdictKey key)
    {
        public VerdictKey Key { get; } = key;

        public bool Used { get; } = true;
    }

    [InlineArray(Ways)]
    private struct Slots
    {
        private Slot _element;
    }

    private struct Bucket
    {
        public int Sequence;
        public int Hand;
        public int Referenced;
        public Slots Slots;
    }
}
