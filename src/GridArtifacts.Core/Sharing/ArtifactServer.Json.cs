using System.Text.Json;
using System.Text.Json.Serialization;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Sharing;

// The shapes of the page's JSON API. Property names are camelCased by the web defaults, in the order
// declared here: what the page reads (Sharing/Page/*.js). Written through ApiJson (generated at build
// time, no reflection), so the server runs in a Native AOT build too.

/// <summary>GET /api/store.</summary>
internal sealed record StoreAnswer(string Location, string Kind);

/// <summary>GET /api/experiments: a run's experiments and the records that could not be read.</summary>
internal sealed record ExperimentsAnswer(IEnumerable<ExperimentRow> Experiments, IEnumerable<string> Errors);

internal sealed record ExperimentRow(
    string Id, string Name, string Status, bool Active, int? ExitCode, string? Signal, string? Reason,
    int Artifacts, long Bytes, DateTimeOffset? Started, DateTimeOffset? Finished,
    IReadOnlyDictionary<string, string> Parameters, IReadOnlyList<string> Tags, IReadOnlyList<string> OwnTags,
    bool Protected, IReadOnlyDictionary<string, double> Metrics, string? MetricsSource)
{
    public static ExperimentRow Of(GridExperiment e) => new(
        e.Id, e.Experiment, e.Status.ToString(), e.Status.IsActive(), e.ExitCode, e.Signal, e.Reason,
        e.ArtifactCount, e.ArtifactBytes, e.Started, e.Finished,
        e.Parameters, e.Tags, e.OwnTags, e.Protected, e.Metrics, e.MetricsSource);
}

/// <summary>GET /api/artifacts: an experiment's artifacts and what could not be read.</summary>
internal sealed record ArtifactsAnswer(IEnumerable<ArtifactRow> Artifacts, IEnumerable<string> Errors);

internal sealed record ArtifactRow(string Path, long Size, DateTimeOffset Modified, string? Sha256, string Kind);

/// <summary>GET /api/metrics: an experiment's curves for the chart.</summary>
internal sealed record MetricsAnswer(string? Source, string? X, IReadOnlyList<string> Columns,
    IReadOnlyDictionary<string, double[][]> Series, int Rows, bool Downsampled, string? Problem);

/// <summary>POST /api/link: a new expiring link and what the store warned of.</summary>
internal sealed record LinkAnswer(Uri Url, DateTimeOffset ExpiresAt, List<string> Warnings);

/// <summary>A store's error, as any handler of the API answers it.</summary>
internal sealed record ErrorAnswer(string Error, string ErrorId);

/// <summary>The API's JSON: the web defaults (camelCase), as the server always wrote it.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(StoreAnswer))]
[JsonSerializable(typeof(ExperimentsAnswer))]
[JsonSerializable(typeof(ArtifactsAnswer))]
[JsonSerializable(typeof(MetricsAnswer))]
[JsonSerializable(typeof(LinkAnswer))]
[JsonSerializable(typeof(ErrorAnswer))]
// A zip request's selection: [[run, experiment, path], ...].
[JsonSerializable(typeof(string[][]))]
internal sealed partial class ApiJson : JsonSerializerContext;
