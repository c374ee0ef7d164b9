using System.Runtime.InteropServices;
using System.Text;

namespace GridArtifacts.Core.Capture;

/// <summary>
/// What the capture agent knows of every file it watches, in a few flat arrays rather than an
/// object and strings per file: a 40-byte slot, the artifact path as UTF-8 in a shared arena, and
/// a 4-byte entry of an open-addressing index (at most half full). About 80 bytes a file (1,000,000 files: under
/// 100 MB), whatever the files' sizes; nothing per file is rebuilt on a pass.
/// </summary>
/// <remarks>Times (<see cref="Slot.SeenAt"/>, <see cref="Now"/>) are read on <paramref name="clock"/>: the agent's.</remarks>
internal sealed class FileTable(TimeProvider clock)
{
    [Flags]
    public enum SlotFlags : byte
    {
        None = 0,
        /// <summary>Changed since its last upload (or never uploaded): on the pending list.</summary>
        Dirty = 1,
        /// <summary>Its name cannot be stored; said once.</summary>
        Reported = 2,
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Slot
    {
        /// <summary>Size and time last seen on disk.</summary>
        public long Length;
        public long Ticks;
        /// <summary>The size of what is stored for it (-1: nothing yet).</summary>
        public long SyncedSize;
        /// <summary>When its size or time last changed, in 10 ms units since the table began.</summary>
        public uint SeenAt;
        /// <summary>The number of its latest manifest entry (-1: none yet; -2: an earlier agent's).</summary>
        public int Entry;
        internal int PathRef;
        internal ushort PathBytes;
        /// <summary>Which watched root it is under.</summary>
        public byte Root;
        public SlotFlags Flags;
    }

    private const int SlotChunkBits = 14;
    private const int SlotChunk = 1 << SlotChunkBits;
    private const int ArenaChunkBits = 20;
    private const int ArenaChunk = 1 << ArenaChunkBits;

    private readonly List<Slot[]> _slots = new();
    private readonly List<byte[]> _arena = new();
    private int _arenaUsed = ArenaChunk; // the first path opens the first chunk
    private int[] _index = new int[1 << 10]; // slot number + 1; 0 is empty
    private readonly long _startTicks = clock.GetUtcNow().UtcTicks;

    public int Count { get; private set; }

    public ref Slot this[int i] => ref _slots[i >> SlotChunkBits][i & (SlotChunk - 1)];

    /// <summary>Now, in the units of <see cref="Slot.SeenAt"/>.</summary>
    public uint Now => (uint)((clock.GetUtcNow().UtcTicks - _startTicks) / (TimeSpan.TicksPerMillisecond * 10));

    public static TimeSpan Elapsed(uint from, uint to) => TimeSpan.FromMilliseconds((to - (long)from) * 10);

    /// <summary>The slot of <paramref name="path"/>, or -1.</summary>
    public int Find(ReadOnlySpan<char> path)
    {
        Span<byte> buffer = stackalloc byte[512];
        var bytes = Encode(path, ref buffer, out var rented);
        try { return Lookup(bytes, Hash(bytes), out _); }
        finally { if (rented is not null) System.Buffers.ArrayPool<byte>.Shared.Return(rented); }
    }

    /// <summary>The slot of <paramref name="path"/>, added (zeroed, not dirty) when it is new.</summary>
    public int FindOrAdd(ReadOnlySpan<char> path, byte root, out bool added)
    {
        Span<byte> buffer = stackalloc byte[512];
        var bytes = Encode(path, ref buffer, out var rented);
        try
        {
            var hash = Hash(bytes);
            var found = Lookup(bytes, hash, out var free);
            if (found >= 0) { added = false; return found; }
            added = true;
            var i = Count++;
            if ((i >> SlotChunkBits) == _slots.Count) _slots.Add(new Slot[SlotChunk]);
            ref var s = ref this[i];
            s = new Slot { Length = -1, Ticks = -1, SyncedSize = -1, Entry = -1, Root = root, PathBytes = checked((ushort)bytes.Length), PathRef = Store(bytes) };
            _index[free] = i + 1;
            if (Count * 2 > _index.Length) Grow();
            return i;
        }
        finally { if (rented is not null) System.Buffers.ArrayPool<byte>.Shared.Return(rented); }
    }

    /// <summary>A slot's artifact path (built only for the files a pass uploads or reports).</summary>
    public string PathOf(int i)
    {
        ref var s = ref this[i];
        return Encoding.UTF8.GetString(_arena[s.PathRef >> ArenaChunkBits], s.PathRef & (ArenaChunk - 1), s.PathBytes);
    }

    private static ReadOnlySpan<byte> Encode(ReadOnlySpan<char> path, ref Span<byte> buffer, out byte[]? rented)
    {
        rented = null;
        var max = Encoding.UTF8.GetMaxByteCount(path.Length);
        if (max > buffer.Length) buffer = rented = System.Buffers.ArrayPool<byte>.Shared.Rent(max);
        var n = Encoding.UTF8.GetBytes(path, buffer);
        return buffer[..n];
    }

    private int Lookup(ReadOnlySpan<byte> bytes, int hash, out int free)
    {
        var mask = _index.Length - 1;
        for (var p = hash & mask; ; p = (p + 1) & mask)
        {
            var v = _index[p];
            if (v == 0) { free = p; return -1; }
            if (PathBytesOf(v - 1).SequenceEqual(bytes))
            {
                free = -1;
                return v - 1;
            }
        }
    }

    private ReadOnlySpan<byte> PathBytesOf(int i)
    {
        ref var s = ref this[i];
        return _arena[s.PathRef >> ArenaChunkBits].AsSpan(s.PathRef & (ArenaChunk - 1), s.PathBytes);
    }

    /// <summary>The index's hash of a path's bytes (seeded per process; never stored).</summary>
    private static int Hash(ReadOnlySpan<byte> bytes)
    {
        var h = new HashCode();
        h.AddBytes(bytes);
        return h.ToHashCode();
    }

    private int Store(ReadOnlySpan<byte> bytes)
    {
        if (_arenaUsed + bytes.Length > ArenaChunk)
        {
            _arena.Add(new byte[ArenaChunk]);
            _arenaUsed = 0;
        }
        var at = ((_arena.Count - 1) << ArenaChunkBits) | _arenaUsed;
        bytes.CopyTo(_arena[^1].AsSpan(_arenaUsed));
        _arenaUsed += bytes.Length;
        return at;
    }

    private void Grow()
    {
        var index = new int[_index.Length * 2];
        var mask = index.Length - 1;
        for (var i = 0; i < Count; i++)
        {
            var p = Hash(PathBytesOf(i)) & mask;
            while (index[p] != 0) p = (p + 1) & mask;
            index[p] = i + 1;
        }
        _index = index;
    }
}
