using System.Text.Json;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Capture;

/// <summary>
/// The capture agent's manifest, kept as segments: each entry of an upload is appended to a local
/// journal file (one JSON line), a pass's file goes to the store as one segment, and the segments are
/// folded into manifest.json now and then and sealed into it at the end. Memory holds no entry: the
/// agent's <see cref="FileTable"/> keeps the number of each file's latest entry, and folding reads
/// the local files back one line at a time.
/// </summary>
internal sealed class ManifestJournal : IDisposable
{
    private readonly GridCatalog _catalog;
    private readonly string _run;
    private readonly string _experiment;
    private readonly string _folder;
    private readonly object _gate = new();
    private StreamWriter? _open;
    private int _openEntries;
    /// <summary>Entries added so far: each is the next line of the segments, in order, so its number says where it is.</summary>
    private int _entries;
    /// <summary>
    /// The first segment this agent writes, the first not yet in the store, and the one entries go to
    /// now. At most one closed segment waits unsent (<c>_unsent == _current - 1</c>): while it does, the
    /// open one is not closed, so an outage piles entries into one segment rather than one per pass.
    /// </summary>
    private long _first;
    private long _unsent;
    private long _current;
    /// <summary>One flush or seal at a time; entries are added meanwhile, to the open segment.</summary>
    private readonly SemaphoreSlim _flushing = new(1, 1);
    /// <summary>What an earlier agent of the experiment left (its merged manifest), folded in first.</summary>
    private string? _base;
    private long _storedSinceFold;
    private long _bytesSinceFold;
    private long _foldedBytes;
    private DateTimeOffset _lastWrite = DateTimeOffset.MinValue;
    /// <summary>Whether a segment was ever sent (even one the store may not have taken): only then, or after an earlier agent, can a fold find segments to remove.</summary>
    private bool _segmentsSent;

    public ManifestJournal(GridCatalog catalog, string run, string experiment, string folder)
    {
        _catalog = catalog;
        _run = run;
        _experiment = experiment;
        _folder = Directory.CreateDirectory(folder).FullName;
    }

    /// <summary>Segments written in a row before they are folded into manifest.json, whatever their size.</summary>
    public const int MaxSegmentsBeforeFold = 64;

    /// <summary>
    /// How far apart segments go to the store: a second, and longer as the folded manifest grows
    /// (a second per 4 MB of it, at most 30 s), so folding stays a small share of what is sent.
    /// </summary>
    public TimeSpan SuggestedInterval => TimeSpan.FromSeconds(Math.Clamp(_foldedBytes / (4.0 * (1 << 20)), 1, 30));

    /// <summary>
    /// Numbers this agent's segments after any already stored, and keeps what an earlier agent of the
    /// experiment recorded (it was lost and this one took over), so the sealed manifest has it too.
    /// </summary>
    /// <param name="tookOver">Whether an earlier agent held the experiment: else the store holds none of its manifest, and nothing is read.</param>
    /// <param name="earlier">Told each entry an earlier agent recorded, once.</param>
    public async Task StartAsync(bool tookOver, Action<ManifestEntry> earlier, CancellationToken ct)
    {
        if (!tookOver) return;
        _first = _unsent = _current = await _catalog.Manifests.NextManifestSegmentAsync(_run, _experiment, ct).ConfigureAwait(false);
        if (_first == 0) return;
        // What the earlier agent left goes to a local file as it is read (a manifest of a million
        // entries is not held), then to the caller from that file.
        var file = Path.Combine(_folder, "earlier.jsonl");
        var entries = 0;
        StreamWriter? w = null;
        try
        {
            await _catalog.Manifests.VisitManifestAsync(_run, _experiment,
                () => { w?.Dispose(); w = new StreamWriter(file, append: false); entries = 0; },
                e => { w!.WriteLine(JsonSerializer.Serialize(e, RecordJson.CompactEntry)); entries++; }, ct).ConfigureAwait(false);
        }
        finally
        {
            w?.Dispose();
        }
        if (entries == 0) return;
        _base = file;
        using var reader = new StreamReader(file);
        while (await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
        {
            if (line.Length > 0) earlier(JsonSerializer.Deserialize(line, RecordJson.CompactEntry)!);
        }
    }

    private string SegmentFile(long seq) => Path.Combine(_folder, seq.ToString("x8", System.Globalization.CultureInfo.InvariantCulture) + ".jsonl");

    /// <summary>
    /// Records one upload; returns its entry number (the entries of all segments, counted in order).
    /// A path's latest entry is the one with the number its caller keeps; an earlier entry of the same
    /// path, even in the same segment, is left out when the segments are folded.
    /// </summary>
    public int Add(ManifestEntry entry)
    {
        var line = JsonSerializer.Serialize(entry, RecordJson.CompactEntry);
        lock (_gate)
        {
            _open ??= new StreamWriter(new FileStream(SegmentFile(_current), FileMode.Append, FileAccess.Write, FileShare.Read));
            _open.WriteLine(line);
            _openEntries++;
            return _entries++;
        }
    }

    /// <summary>
    /// Closes the open segment when it has entries and <paramref name="interval"/> has passed since the
    /// last write, and sends what is closed to the store, in order (a segment the store did not take goes
    /// again first, under its number, so segments never have gaps). Entries added while this runs go to
    /// the next segment. Folds when enough piled up. A store that is away throws; what is closed waits.
    /// </summary>
    public async Task FlushAsync(TimeSpan interval, Func<string, int, bool> isLatest, CancellationToken ct)
    {
        await _flushing.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            long through;
            lock (_gate)
            {
                if (_openEntries > 0 && _unsent == _current && _catalog.Clock.GetUtcNow() - _lastWrite >= interval)
                {
                    _open?.Dispose();
                    _open = null;
                    _openEntries = 0;
                    _current++;
                }
                through = _current - 1;
            }
            // Only a flush moves _unsent, and flushes take turns.
            if (_unsent > through) return;
            for (var seq = _unsent; seq <= through; seq++)
            {
                _segmentsSent = true;
                await _catalog.Manifests.WriteManifestSegmentAsync(_run, _experiment, seq, SegmentFile(seq), ct).ConfigureAwait(false);
                lock (_gate)
                {
                    _unsent = seq + 1;
                    _lastWrite = _catalog.Clock.GetUtcNow();
                }
                _storedSinceFold++;
                _bytesSinceFold += new FileInfo(SegmentFile(seq)).Length;
            }
            // Fold when many segments piled up, or when they outweigh what was folded: a reader then reads
            // a bounded number of segments, and folding costs at most about twice what was uploaded.
            if (_storedSinceFold >= MaxSegmentsBeforeFold || (_storedSinceFold >= 8 && _bytesSinceFold >= Math.Max(1 << 20, _foldedBytes)))
            {
                _foldedBytes = await FoldAsync(through, sealedAtEnd: false, isLatest, ct).ConfigureAwait(false);
                _storedSinceFold = 0;
                _bytesSinceFold = 0;
            }
        }
        finally
        {
            _flushing.Release();
        }
    }

    /// <summary>Writes the sealed manifest: every file's latest entry, then the segments are removed.</summary>
    public async Task SealAsync(Func<string, int, bool> isLatest, CancellationToken ct)
    {
        await _flushing.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            long last;
            lock (_gate)
            {
                _open?.Dispose();
                _open = null;
                last = _current;
            }
            await FoldAsync(last, sealedAtEnd: true, isLatest, ct).ConfigureAwait(false);
        }
        finally
        {
            _flushing.Release();
        }
    }

    /// <summary>
    /// Builds manifest.json from the local files, one line at a time (an entry is written only from
    /// the segment that holds its path's latest entry; an earlier agent's only when this one has none),
    /// sends it, and removes the segments it folds in. Returns its size.
    /// </summary>
    private async Task<long> FoldAsync(long through, bool sealedAtEnd, Func<string, int, bool> isLatest, CancellationToken ct)
    {
        var file = Path.Combine(_folder, "manifest.json");
        await using (var fs = new FileStream(file, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
        await using (var w = new Utf8JsonWriter(fs))
        {
            w.WriteStartObject();
            w.WriteNumber("schema", StoreLayout.SchemaVersion);
            w.WriteString("run", _run);
            w.WriteString("experiment", _experiment);
            w.WriteBoolean("sealed", sealedAtEnd);
            w.WriteString("updated", _catalog.Clock.GetUtcNow());
            w.WriteNumber("through", through);
            w.WriteStartArray("artifacts");
            var sources = new List<(string File, bool Earlier)>();
            if (_base is not null) sources.Add((_base, true));
            for (var s = _first; s <= through; s++) sources.Add((SegmentFile(s), false));
            var number = 0;
            foreach (var (source, earlier) in sources)
            {
                if (!File.Exists(source)) continue;
                using var reader = new StreamReader(source);
                while (await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
                {
                    if (line.Length == 0) continue;
                    var entry = JsonSerializer.Deserialize(line, RecordJson.CompactEntry);
                    // An earlier agent's entries are numbered -1; this agent's by their place in its segments.
                    var at = earlier ? -1 : number++;
                    if (entry is null || !isLatest(entry.Path, at)) continue;
                    JsonSerializer.Serialize(w, entry, RecordJson.CompactEntry);
                    if (w.BytesPending > 1 << 16) await w.FlushAsync(ct).ConfigureAwait(false);
                }
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        await _catalog.Manifests.WriteCompactedManifestAsync(_run, _experiment, file, through, _segmentsSent || _first > 0, ct).ConfigureAwait(false);
        return new FileInfo(file).Length;
    }

    public void Dispose()
    {
        lock (_gate) { _open?.Dispose(); _open = null; }
        _flushing.Dispose();
    }
}
