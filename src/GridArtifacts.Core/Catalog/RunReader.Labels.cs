using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core;

public sealed partial class RunReader
{
    /// <summary>
    /// The labels of the runs named: one listing of a run's keys for one run, one listing of every
    /// run's for more (on a folder store a listing of one run's keys reads the whole runs folder anyway).
    /// A run without labels (or unknown) gets <see cref="RunLabels.None"/>.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, RunLabels>> GetLabelsAsync(IReadOnlyCollection<string> runs, CancellationToken ct)
    {
        var index = new IndexPage();
        var prefix = runs.Count == 1 ? CatalogIndex.RunIndexPrefix(GridNames.CheckRunName(runs.First())) : StoreLayout.RunsPrefix;
        await Store.VisitNamesAsync(prefix, index.Add, ct).ConfigureAwait(false);
        return runs.Distinct(StringComparer.Ordinal).ToDictionary(r => r, index.Labels, StringComparer.Ordinal);
    }

    /// <summary>One experiment with its tags and its run's protection (one listing of the run's keys more than <see cref="GetExperimentAsync"/>).</summary>
    public async Task<GridExperiment> GetLabelledExperimentAsync(string run, string experiment, CancellationToken ct)
    {
        var labels = await GetLabelsAsync(new[] { run }, ct).ConfigureAwait(false);
        return await GetExperimentAsync(run, experiment, ct, labels: labels[run]).ConfigureAwait(false);
    }

    /// <summary>Every run with tags or protection, and its labels: one listing of the index (tab completion, Unprotect-GridRun's).</summary>
    public async Task<IReadOnlyList<(string Run, RunLabels Labels)>> ListLabelsAsync(CancellationToken ct)
    {
        var index = new IndexPage();
        await Store.VisitNamesAsync(StoreLayout.RunsPrefix, index.Add, ct).ConfigureAwait(false);
        return index.Labelled().ToList();
    }

    /// <summary>RunNotFound or ExperimentNotFound unless the run (and the experiment) is there.</summary>
    internal async Task CheckExistsAsync(string run, string? experiment, CancellationToken ct)
    {
        if (experiment is null) await ReadRunRecordAsync(run, ct).ConfigureAwait(false);
        else await GetExperimentAsync(run, experiment, ct, withArtifactSummary: false).ConfigureAwait(false);
    }

    /// <summary>A run as read before, with the labels a later listing shows.</summary>
    private static GridRun WithLabels(GridRun r, RunLabels labels) =>
        new(r.Name, r.Store)
        {
            Status = r.Status, Created = r.Created, Finished = r.Finished, Command = r.Command,
            ExperimentCount = r.ExperimentCount, Experiments = r.Experiments, Parameters = r.Parameters,
            ArtifactCount = r.ArtifactCount, ArtifactBytes = r.ArtifactBytes,
            Protected = labels.Protected, Tags = labels.AllTags,
        };
}
