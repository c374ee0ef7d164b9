using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core;

public sealed partial class RunReader
{
    /// <summary>
    /// The names met in a listing of <c>runs/</c> (run folders and index keys), grouped by run; the
    /// highest sequence of each experiment stands. A listing of 100,000 runs meets 600,000 names, so
    /// names are taken in place: a run's name is made into a string once, and an experiment's key
    /// leaves one small value in one array, which the collector never has to walk object by object.
    /// </summary>
    private sealed class IndexPage
    {
        private struct Run
        {
            public string Name;
            public int Hash;
            public bool Folder;
            /// <summary>The run's protection key was met.</summary>
            public bool Protected;
            /// <summary>The run's own tags, and its experiments' (by index), as met; null for none (most runs).</summary>
            public List<string>? Tags;
            public List<(int Experiment, string Tag)>? ExperimentTags;
            /// <summary>The run's cluster job, from its job key; null for none (a Local run).</summary>
            public RunJob? Job;
            /// <summary>From the run's own key: null until it is met.</summary>
            public DateTimeOffset? Created;
            public string? Summary;
            /// <summary>The run's last experiment key in <see cref="_experiments"/>, -1 for none; each links to the one before.</summary>
            public int LastExperiment;
        }

        /// <summary>What a listing keeps of an experiment's key: 48 bytes (times as UTC ticks, 0 for none).</summary>
        public readonly struct Experiment
        {
            private readonly long _finished, _heartbeat;
            public Experiment(int index, long sequence, GridStatus status, DateTimeOffset? finished, DateTimeOffset? heartbeat, long files, long bytes)
            {
                Index = index;
                Status = status;
                Sequence = sequence;
                _finished = finished?.UtcTicks ?? 0;
                _heartbeat = heartbeat?.UtcTicks ?? 0;
                Files = files;
                Bytes = bytes;
            }
            public int Index { get; }
            public GridStatus Status { get; }
            public long Sequence { get; }
            public long Files { get; }
            public long Bytes { get; }
            public DateTimeOffset? Finished => _finished == 0 ? null : new DateTimeOffset(_finished, TimeSpan.Zero);
            public DateTimeOffset? Heartbeat => _heartbeat == 0 ? null : new DateTimeOffset(_heartbeat, TimeSpan.Zero);
            public string Name => GridNames.ExperimentName(Index);
        }

        private Run[] _runs = new Run[64];
        private int _runCount;
        private int[] _buckets = new int[128]; // run slot + 1, 0 when empty; open addressing, a power of two long
        private (Experiment Value, int Previous)[] _experiments = new (Experiment, int)[64];
        private int _experimentCount;
        // Runs started alike carry the same summary: each is decoded once.
        private readonly Dictionary<string, (string? Command, IReadOnlyDictionary<string, string> Parameters)?> _summaries = new(StringComparer.Ordinal);
        // 100,000 runs tagged "keep" keep one string.
        private readonly Dictionary<string, string> _tagNames = new(StringComparer.Ordinal);

        private string TagName(ReadOnlySpan<char> tag)
        {
            var s = tag.ToString();
            if (_tagNames.TryGetValue(s, out var known)) return known;
            _tagNames[s] = s;
            return s;
        }

        /// <summary>Takes one name of a listing of <c>runs/</c>: a run folder, an index key, or anything else (passed over).</summary>
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public void Add(ReadOnlySpan<char> name, bool isFolder)
        {
            if (isFolder)
            {
                if (!GridNames.IsValidRunName(name)) return;
                var folder = Slot(name); // first: it may grow _runs
                _runs[folder].Folder = true;
                return;
            }
            var k = CatalogIndex.ParseName(name);
            switch (k.Kind)
            {
                case CatalogIndex.KeyKind.Run:
                    var slot = Slot(k.Run); // first: it may grow _runs
                    ref var run = ref _runs[slot];
                    run.Created = k.Created;
                    run.Summary = k.Summary.IsEmpty ? null : k.Summary.ToString();
                    break;
                case CatalogIndex.KeyKind.Protected:
                    slot = Slot(k.Run);
                    _runs[slot].Protected = true;
                    break;
                case CatalogIndex.KeyKind.Job:
                    slot = Slot(k.Run);
                    _runs[slot].Job = new RunJob(k.Scheduler, k.Cluster.IsEmpty ? null : k.Cluster.ToString(), k.JobId.ToString());
                    break;
                case CatalogIndex.KeyKind.RunTag:
                    slot = Slot(k.Run);
                    (_runs[slot].Tags ??= new List<string>(2)).Add(TagName(k.Tag));
                    break;
                case CatalogIndex.KeyKind.ExperimentTag:
                    slot = Slot(k.Run);
                    (_runs[slot].ExperimentTags ??= new List<(int, string)>(2)).Add((GridNames.ExperimentIndex(k.Experiment), TagName(k.Tag)));
                    break;
                case CatalogIndex.KeyKind.Experiment:
                    slot = Slot(k.Run);
                    if (_experimentCount == _experiments.Length) Array.Resize(ref _experiments, _experiments.Length * 2);
                    _experiments[_experimentCount] = (new Experiment(GridNames.ExperimentIndex(k.Experiment), k.Sequence, k.Status, k.Finished, k.Heartbeat, k.Files, k.Bytes),
                        _runs[slot].LastExperiment);
                    _runs[slot].LastExperiment = _experimentCount++;
                    break;
            }
        }

        /// <summary>The slot of a run, added when it is new.</summary>
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        private int Slot(ReadOnlySpan<char> name)
        {
            var hash = string.GetHashCode(name, StringComparison.Ordinal);
            var mask = _buckets.Length - 1;
            for (var b = hash & mask; ; b = (b + 1) & mask)
            {
                var slot = _buckets[b] - 1;
                if (slot < 0)
                {
                    if (_runCount == _runs.Length) Array.Resize(ref _runs, _runs.Length * 2);
                    _runs[_runCount] = new Run { Name = name.ToString(), Hash = hash, LastExperiment = -1 };
                    _buckets[b] = ++_runCount;
                    if (_runCount * 2 > _buckets.Length) Rehash();
                    return _runCount - 1;
                }
                if (_runs[slot].Hash == hash && name.SequenceEqual(_runs[slot].Name)) return slot;
            }
        }

        private void Rehash()
        {
            _buckets = new int[_buckets.Length * 2];
            var mask = _buckets.Length - 1;
            for (var i = 0; i < _runCount; i++)
            {
                var b = _runs[i].Hash & mask;
                while (_buckets[b] != 0) b = (b + 1) & mask;
                _buckets[b] = i + 1;
            }
        }

        private int Find(string name)
        {
            var hash = string.GetHashCode(name, StringComparison.Ordinal);
            var mask = _buckets.Length - 1;
            for (var b = hash & mask; _buckets[b] != 0; b = (b + 1) & mask)
            {
                var slot = _buckets[b] - 1;
                if (_runs[slot].Hash == hash && _runs[slot].Name == name) return slot;
            }
            return -1;
        }

        /// <summary>The run's tags and protection, as the listing showed them (none for a run it did not meet).</summary>
        public RunLabels Labels(string run) => Find(run) is var slot && slot >= 0 ? Labels(slot) : RunLabels.None;

        private RunLabels Labels(int slot)
        {
            ref var run = ref _runs[slot];
            if (run.Job is { } job) return LabelsWithoutJob(slot) with { Job = job };
            return LabelsWithoutJob(slot);
        }

        private RunLabels LabelsWithoutJob(int slot)
        {
            ref var run = ref _runs[slot];
            if (run.Tags is null && run.ExperimentTags is null) return run.Protected ? RunLabels.ProtectedOnly : RunLabels.None;
            return new RunLabels(run.Tags ?? (IReadOnlyList<string>)Array.Empty<string>(),
                run.ExperimentTags?.GroupBy(t => t.Experiment).ToDictionary(g => GridNames.ExperimentName(g.Key), g => (IReadOnlyList<string>)g.Select(t => t.Tag).ToList()),
                run.Protected);
        }

        /// <summary>Every run met in the listing with tags or protection, and its labels.</summary>
        public IEnumerable<(string Run, RunLabels Labels)> Labelled()
        {
            for (var i = 0; i < _runCount; i++)
                if (_runs[i].Protected || _runs[i].Tags is not null || _runs[i].ExperimentTags is not null) yield return (_runs[i].Name, Labels(i));
        }

        /// <summary>Whether the listing held the run's own key (a schema-2 run).</summary>
        public bool HasRun(string run) => Find(run) is var slot && slot >= 0 && _runs[slot].Created is not null;

        /// <summary>Run folders without a run key: runs written by 0.1.0 (schema 1), read from their records.</summary>
        public IEnumerable<string> Unindexed()
        {
            for (var i = 0; i < _runCount; i++)
                if (_runs[i].Folder && _runs[i].Created is null) yield return _runs[i].Name;
        }

        /// <summary>A run's experiments in index order, each at its highest sequence.</summary>
        public List<Experiment> ExperimentsOf(string run) => Find(run) is var slot && slot >= 0 ? Latest(slot) : new();

        private List<Experiment> Latest(int slot)
        {
            var keys = new List<Experiment>(4);
            for (var e = _runs[slot].LastExperiment; e >= 0; e = _experiments[e].Previous) keys.Add(_experiments[e].Value);
            // Index order, and the highest sequence first within an experiment: the first of each stands.
            keys.Sort(static (a, b) => a.Index != b.Index ? a.Index.CompareTo(b.Index) : b.Sequence.CompareTo(a.Sequence));
            var latest = 0;
            for (var i = 0; i < keys.Count; i++)
                if (latest == 0 || keys[latest - 1].Index != keys[i].Index) keys[latest++] = keys[i];
            keys.RemoveRange(latest, keys.Count - latest);
            return keys;
        }

        private (string? Command, IReadOnlyDictionary<string, string> Parameters)? Summary(string summary)
        {
            if (!_summaries.TryGetValue(summary, out var decoded))
            {
                try { decoded = CatalogIndex.DecodeSummary(summary); }
                catch (FormatException) { decoded = null; } // not one this version wrote: the record says
                _summaries[summary] = decoded;
            }
            return decoded;
        }

        /// <summary>Every run with a run key, built from its keys; a run whose command did not fit in its key has its record read.</summary>
        public async Task<ReadResult<GridRun>> RunsAsync(RunReader reader, CancellationToken ct)
        {
            var summaries = new (string? Command, IReadOnlyDictionary<string, string> Parameters)?[_runCount];
            var longer = new List<string>();
            for (var i = 0; i < _runCount; i++)
            {
                if (_runs[i].Created is null) continue;
                summaries[i] = _runs[i].Summary is { } s ? Summary(s) : null;
                if (summaries[i] is null) longer.Add(_runs[i].Name);
            }
            var records = await ReadMany.AllAsync(longer, reader.ReadRunRecordAsync, ct).ConfigureAwait(false);
            var byName = records.Items.ToDictionary(r => r.Name, StringComparer.Ordinal);
            var items = new List<GridRun>(_runCount);
            for (var i = 0; i < _runCount; i++)
            {
                ref var run = ref _runs[i];
                if (run.Created is not { } created) continue;
                var (command, parameters) = summaries[i] ?? (null, null!);
                if (summaries[i] is null)
                {
                    if (!byName.TryGetValue(run.Name, out var record)) continue; // its error is in records.Errors
                    (command, parameters) = (record.Command, record.Parameters);
                }
                items.Add(reader.BuildRun(run.Name, created, command, parameters,
                    Latest(i).Select(x => new RunPart(x.Name, reader.EffectiveStatus(x.Status, x.Heartbeat), x.Finished, x.Files, x.Bytes)), Labels(i)));
            }
            return new ReadResult<GridRun>(items, records.Errors);
        }
    }
}
