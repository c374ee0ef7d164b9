using System.Text.Json;
using System.Text.Json.Serialization;
using GridArtifacts.Core.Stores;

namespace GridArtifacts.Core.Launch;

/// <summary>
/// What a run's experiments are and how each is started: written once by Start-GridRun as plan.json
/// in the run's folder, and read by whatever starts the experiments (the local supervisor, each Slurm
/// array task, Remove-GridWorkingDirectory). Plain JSON with these property names, as every release
/// since 0.2 wrote it; names are read in any case, and what an older plan lacks takes its default.
/// </summary>
public sealed record RunPlan
{
    public string Run { get; init; } = "";

    /// <summary>The store's location (a folder's full path, or s3://bucket/prefix).</summary>
    public string Store { get; init; } = "";

    /// <summary>Experiments running at once (the supervisor's limit; with Slurm, the array's %limit).</summary>
    public int ThrottleLimit { get; init; } = 1;

    /// <summary>More folders whose new and changed files are artifacts of every experiment (full paths).</summary>
    public IReadOnlyList<string> ArtifactPath { get; init; } = Array.Empty<string>();

    /// <summary>Keep each experiment's working folder after its final sync. Absent (false) from the plans of releases before 0.4.2, which kept every folder.</summary>
    public bool KeepWorkingDirectory { get; init; }

    public IReadOnlyList<PlannedExperiment> Experiments { get; init; } = Array.Empty<PlannedExperiment>();

    /// <summary>Writes the plan to <paramref name="path"/>.</summary>
    public void Write(string path) => File.WriteAllText(path, JsonSerializer.Serialize(this, RunPlanJson.Default.RunPlan));

    /// <summary>Reads a plan (this release's or an earlier one's).</summary>
    /// <exception cref="InvalidDataException">Not a plan: too large, not JSON of this shape, or no run named.</exception>
    public static RunPlan Read(string path)
    {
        using var stream = File.OpenRead(path);
        if (stream.Length > StoreLayout.MaxRecordBytes) throw new InvalidDataException($"'{path}' is larger than a plan can be.");
        try
        {
            var plan = JsonSerializer.Deserialize(stream, RunPlanJson.Default.RunPlan);
            if (plan?.Run is not { Length: > 0 }) throw new InvalidDataException($"'{path}' names no run.");
            return plan with { Store = plan.Store ?? "", ArtifactPath = plan.ArtifactPath ?? Array.Empty<string>(), Experiments = plan.Experiments ?? Array.Empty<PlannedExperiment>() };
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"'{path}' is not a plan: {ex.Message}", ex);
        }
    }

    /// <summary>Experiment number <paramref name="index"/> of the plan.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The plan has no such experiment.</exception>
    public PlannedExperiment Experiment(int index) => index >= 0 && index < Experiments.Count
        ? Experiments[index]
        : throw new ArgumentOutOfRangeException(nameof(index), $"{Run}: the plan has no experiment number {index}.");
}

/// <summary>One experiment of a plan: its name, its own working folder, its parameters and its command line.</summary>
public sealed record PlannedExperiment
{
    public string Experiment { get; init; } = "";

    public string WorkingDirectory { get; init; } = "";

    /// <summary>One combination of the sweep's values, as text.</summary>
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = new Dictionary<string, string>();

    /// <summary>The argument list that runs it (the executable first).</summary>
    public IReadOnlyList<string> Command { get; init; } = Array.Empty<string>();
}

[JsonSourceGenerationOptions(PropertyNameCaseInsensitive = true, ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true)]
[JsonSerializable(typeof(RunPlan))]
internal sealed partial class RunPlanJson : JsonSerializerContext;
