using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core;

/// <summary>What a store holds, in total and run by run (largest first), and the runs that could not be read.</summary>
public sealed record StoreMeasurement(GridStoreMeasure Total, IReadOnlyList<GridRunMeasure> Runs, IReadOnlyList<GridException> Errors);

/// <summary>
/// Measure-GridStore: runs, experiments, artifacts and bytes. By default the figures are the ones
/// the index keys carry (each experiment's writer's synced count and bytes), so a schema-2 store is
/// measured from one listing of <c>runs/</c> with no read; schema-1 runs (0.1.0) are read record by
/// record, with one manifest read per experiment. Exact measures what is stored: one recursive listing
/// of <c>runs/</c>, whose sizes are summed per run, artifacts apart from everything else.
/// </summary>
public static class StoreMeasurer
{
    /// <param name="include">Which runs are measured (the name and tag filters); every run is listed either way.</param>
    /// <param name="top">How many of the largest runs the total names.</param>
    public static async Task<StoreMeasurement> MeasureAsync(GridCatalog catalog, Func<GridRun, bool> include, bool exact, int top, CancellationToken ct)
    {
        var at = catalog.Clock.GetUtcNow();
        ObjectSizes? sizes = exact ? new ObjectSizes() : null;
        var listed = sizes is null
            ? await catalog.Runs.ListRunsAsync(ct, withArtifactSummary: true).ConfigureAwait(false)
            : await catalog.Runs.ListRunsWithObjectsAsync(sizes.Add, ct).ConfigureAwait(false);
        var runs = listed.Items.Where(include).Select(run => Measure(run, sizes))
            .OrderByDescending(m => m.Bytes).ThenBy(m => m.Run, StringComparer.Ordinal).ToList();
        var total = new GridStoreMeasure
        {
            Store = catalog.Location,
            Runs = runs.Count,
            ActiveRuns = runs.Count(r => r.Status.IsActive()),
            ProtectedRuns = runs.Count(r => r.Protected),
            Experiments = runs.Sum(r => (long)r.Experiments),
            Artifacts = runs.Sum(r => r.Artifacts),
            Bytes = runs.Sum(r => r.Bytes),
            OtherBytes = exact ? runs.Sum(r => r.OtherBytes ?? 0) : null,
            Exact = exact,
            MeasuredAt = at,
            Top = runs.Take(top).ToArray(),
        };
        return new StoreMeasurement(total, runs, listed.Errors);
    }

    private static GridRunMeasure Measure(GridRun run, ObjectSizes? sizes)
    {
        var stored = sizes is null ? null : sizes.Of(run.Name) ?? new ObjectSizes.Sums();
        return new GridRunMeasure
        {
            Run = run.Name,
            Store = run.Store,
            Status = run.Status,
            Created = run.Created,
            Finished = run.Finished,
            Experiments = run.ExperimentCount,
            Artifacts = stored?.Artifacts ?? run.ArtifactCount,
            Bytes = stored?.Bytes ?? run.ArtifactBytes,
            OtherBytes = stored?.Other,
            Protected = run.Protected,
            Tags = run.Tags,
        };
    }

    /// <summary>Sizes summed per run from a recursive listing of <c>runs/</c>: artifacts, and everything else.</summary>
    private sealed class ObjectSizes
    {
        public sealed class Sums
        {
            public long Artifacts, Bytes, Other;
        }

        private readonly Dictionary<string, Sums> _runs = new(StringComparer.Ordinal);
        // A run's folder lists as one stretch of keys: its name is made into a string once per stretch, not once per object.
        private string? _current;
        private Sums? _currentSums;

        public Sums? Of(string run) => _runs.GetValueOrDefault(run);

        public void Add(ObjectEntry entry)
        {
            // runs/<run>/<exp>/artifacts/<path> is an artifact; runs/<run>/... (records, manifests,
            // logs) and runs/<run>~... (index keys) are the run's other bytes. Anything else is no run's.
            var name = entry.Key.AsSpan(StoreLayout.RunsPrefix.Length);
            var slash = name.IndexOf('/');
            var run = slash >= 0 ? name[..slash] : name.IndexOf('~') is var tilde and >= 0 ? name[..tilde] : default;
            if (run.IsEmpty || !GridNames.IsValidRunName(run)) return;
            if (!run.SequenceEqual(_current))
            {
                _current = run.ToString();
                _currentSums = _runs.TryGetValue(_current, out var known) ? known : _runs[_current] = new Sums();
            }
            var sums = _currentSums!;
            if (slash >= 0 && IsArtifact(name[(slash + 1)..]))
            {
                sums.Artifacts++;
                sums.Bytes += entry.Size;
            }
            else
            {
                sums.Other += entry.Size;
            }
        }

        /// <summary>Whether a key under a run's folder is under one of its experiments' artifacts folders: <c>expN/artifacts/...</c>.</summary>
        private static bool IsArtifact(ReadOnlySpan<char> inRun)
        {
            var slash = inRun.IndexOf('/');
            if (slash < 0 || !GridNames.IsValidExperimentName(inRun[..slash])) return false;
            var rest = inRun[(slash + 1)..];
            return rest.StartsWith(StoreLayout.ArtifactsFolder, StringComparison.Ordinal)
                && rest.Length > StoreLayout.ArtifactsFolder.Length && rest[StoreLayout.ArtifactsFolder.Length] == '/';
        }
    }
}
