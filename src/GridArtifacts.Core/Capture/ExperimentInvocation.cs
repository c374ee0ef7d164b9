using GridArtifacts.Model;

namespace GridArtifacts.Core.Capture;

/// <summary>
/// One experiment in the foreground, as Invoke-GridExperiment and <c>grid-agent run</c> ask for it:
/// the names and options checked, the run's own signals taken by the agent (a scheduler's SIGTERM,
/// SIGINT), the experiment run to its end and read back. Everything below the option parsing of the
/// cmdlet and of the executable is this.
/// </summary>
public sealed record ExperimentRequest
{
    /// <summary>The run; a new name such as adorable-mouse-123 when null.</summary>
    public string? Run { get; init; }
    public string Experiment { get; init; } = "exp0";
    /// <summary>The executable and its arguments.</summary>
    public required IReadOnlyList<string> Command { get; init; }
    /// <summary>The folder the command runs in (a full path).</summary>
    public required string WorkingDirectory { get; init; }
    /// <summary>Whether the caller named <see cref="WorkingDirectory"/> (the current location is never removed).</summary>
    public bool WorkingDirectoryGiven { get; init; }
    public bool RemoveWorkingDirectory { get; init; }
    /// <summary>More folders whose new and changed files are artifacts (full paths).</summary>
    public IReadOnlyList<string> ArtifactRoots { get; init; } = Array.Empty<string>();
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<string>? Tags { get; init; }
    public bool Queued { get; init; }
    /// <summary>Seconds from a scheduler's SIGTERM to its SIGKILL: GRID_SIGNAL_GRACE of this process by default, or null.</summary>
    public string? SignalGrace { get; init; } = Environment.GetEnvironmentVariable(CaptureOptions.SignalGraceVariable);
    /// <summary>This process runs this one experiment and adopts what its script leaves behind (<see cref="CaptureOptions.EndsLeftovers"/>).</summary>
    public bool EndsLeftovers { get; init; }
}

/// <summary>How an experiment run in the foreground ended.</summary>
/// <param name="ExitCode">The command's exit code as the system reports it (128 + n after signal n; 127: it could not be started; -1: it was stopped while queued).</param>
/// <param name="Experiment">The experiment as it ended, or null when it was removed right after its final sync.</param>
public sealed record ExperimentOutcome(string Run, string ExperimentName, int ExitCode, GridExperiment? Experiment);

public static class ExperimentInvocation
{
    /// <summary>Checks <paramref name="request"/> and makes the agent's options; <paramref name="warn"/> hears of a bad grace.</summary>
    /// <exception cref="GridException">A bad run, experiment or tag name; -RemoveWorkingDirectory without a folder; no command.</exception>
    public static (string Run, string Experiment, CaptureOptions Options) Prepare(ExperimentRequest request, Action<string> warn)
    {
        var run = GridNames.CheckRunName(request.Run ?? GridNames.NewRunName());
        var experiment = GridNames.CheckExperimentName(request.Experiment);
        var tags = GridNames.CheckTags(request.Tags);
        if (request.Command.Count == 0 || string.IsNullOrEmpty(request.Command[0]))
            throw new GridException(GridErrorKind.InvalidArgument, "NoCommand", "Give the command to run (after --).", null);
        if (request.RemoveWorkingDirectory && !request.WorkingDirectoryGiven)
        {
            // The current location is the user's own folder: it is never removed.
            throw new GridException(GridErrorKind.InvalidArgument, "RemoveNeedsWorkingDirectory",
                "Removing the working folder needs one named (-WorkingDirectory, --working-directory): the current location is never removed.", null);
        }
        // GRID_PARAM_<NAME> is upper case: two names that differ only in case would be one variable.
        if (request.Parameters.Keys.GroupBy(k => k.ToUpperInvariant()).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new GridException(GridErrorKind.InvalidArgument, "ParameterGivenTwice",
                $"The parameters {string.Join(" and ", twice.Select(k => $"'{k}'"))} differ only in case; both would be GRID_PARAM_{twice.Key}. Give one.", null);
        var budget = CaptureOptions.StopBudgetFor(request.SignalGrace, out var problem);
        if (problem is not null) warn(problem);
        var options = new CaptureOptions
        {
            FileName = request.Command[0],
            Arguments = request.Command.Skip(1).ToArray(),
            WorkingDirectory = request.WorkingDirectory,
            ArtifactRoots = request.ArtifactRoots,
            Parameters = request.Parameters,
            Environment = request.Parameters.ToDictionary(p => "GRID_PARAM_" + p.Key.ToUpperInvariant(), p => p.Value),
            Queued = request.Queued,
            Tags = tags,
            StopBudget = budget,
            RemoveWorkingDirectory = request.RemoveWorkingDirectory,
            EndsLeftovers = request.EndsLeftovers,
        };
        return (run, experiment, options);
    }

    /// <summary>
    /// Runs the experiment to its end under its capture agent and reads it back. While it runs, SIGTERM
    /// and SIGINT to this process stop the experiment rather than the process (the runtime's own exit
    /// would lose the final sync, and the experiment would read as Lost): the command is sent SIGTERM,
    /// and the final sync, sealed manifest and status are done within the grace.
    /// </summary>
    /// <param name="warn">Warnings as they happen (from any thread).</param>
    /// <param name="signals">The process's signals, taken since before this call (grid-agent); null: taken for this call only.</param>
    /// <exception cref="GridException">The claim was refused, or the store would not take the experiment.</exception>
    public static async Task<ExperimentOutcome> RunAsync(GridCatalog catalog, string run, string experiment, CaptureOptions options, Action<string> warn, CancellationToken ct, SignalRelay? signals = null)
    {
        var agent = new CaptureAgent(catalog, run, experiment, options);
        agent.Warning += warn;
        var own = signals is null ? new SignalRelay() : null;
        int exitCode;
        try
        {
            (signals ?? own!).Attach(agent);
            exitCode = await agent.RunAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            own?.Dispose();
        }
        try
        {
            return new ExperimentOutcome(run, experiment, exitCode, await catalog.Runs.GetLabelledExperimentAsync(run, experiment, CancellationToken.None).ConfigureAwait(false));
        }
        catch (GridException ex) when (ex.Kind == GridErrorKind.NotFound)
        {
            // Removed (Remove-GridRun -Force) right after its final sync: the agent's work is done.
            warn($"{GridNames.ExperimentId(run, experiment)} ended and was then removed from the store: {ex.Message}");
            return new ExperimentOutcome(run, experiment, exitCode, null);
        }
        catch (GridException ex)
        {
            // Its end is recorded; only the reading back failed (the store away for a moment).
            warn($"{GridNames.ExperimentId(run, experiment)} ended (its status is in the store), but could not be read back: {ex.Message}");
            return new ExperimentOutcome(run, experiment, exitCode, null);
        }
    }
}
