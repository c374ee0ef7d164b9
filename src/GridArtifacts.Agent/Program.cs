using GridArtifacts.Core;
using GridArtifacts.Core.Capture;
using GridArtifacts.Core.Launch;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Agent;

/// <summary>
/// grid-agent: runs one experiment under the capture agent, as Invoke-GridExperiment does, without
/// PowerShell. Everything below the option parsing is Core's (<see cref="ExperimentInvocation"/>).
/// </summary>
public static class Program
{
    public const int Usage = 2;
    /// <summary>The command did not run: a store error, missing credentials, a refused claim, or an experiment stopped or removed while it was queued.</summary>
    public const int AgentFailed = 125;

    /// <summary>
    /// SIGTERM and SIGINT, taken from the start: one that comes before the experiment's agent exists
    /// is kept, not lost (a container's first process with no handler would not see it at all).
    /// </summary>
    private static SignalRelay? _signals;

    public static async Task<int> Main(string[] args)
    {
        if (args.Length > 0 && args[0] is "run" or "plan") _signals = new SignalRelay();
        try
        {
            return args.Length == 0 ? Fail(Usage, Help.Short) : args[0] switch
            {
                "run" => await RunAsync(args[1..]).ConfigureAwait(false),
                "plan" => await PlanAsync(args[1..]).ConfigureAwait(false),
                "sweep" => await LocalSweep.RunAsync(args[1..]).ConfigureAwait(false),
                "help" or "--help" or "-h" => Print(args.Length > 1 ? Help.For(args[1]) : Help.Main),
                "version" or "--version" => Print($"grid-agent {Help.Version}"),
                _ => Fail(Usage, $"unknown command '{args[0]}'\n{Help.Short}"),
            };
        }
        catch (UsageException ex)
        {
            return Fail(Usage, $"{ex.Message}\n{Help.Short}");
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A fault of the agent itself: said in one line, with what it was.
            return Fail(AgentFailed, $"internal error: {ex.GetType().Name}: {ex.Message}");
        }
    }

    private static readonly Dictionary<string, string> RunAliases = new(StringComparer.Ordinal)
    {
        ["r"] = "run", ["e"] = "experiment", ["s"] = "store", ["C"] = "working-directory",
        ["a"] = "artifact-path", ["p"] = "param", ["t"] = "tag", ["q"] = "quiet", ["h"] = "help",
    };
    private static readonly HashSet<string> RunValued = new(StringComparer.Ordinal) { "run", "experiment", "store", "working-directory", "artifact-path", "param", "tag" };
    private static readonly HashSet<string> RunFlags = new(StringComparer.Ordinal) { "remove-working-directory", "queued", "quiet", "help" };

    /// <summary><c>grid-agent run [options] [--] command [args...]</c></summary>
    private static async Task<int> RunAsync(string[] args)
    {
        var line = new CommandLine(args, RunAliases, RunValued, RunFlags, stopAtFirstWord: true);
        if (line.Has("help")) return Print(Help.Run);
        if (line.Rest.Count == 0) throw new UsageException("give the command to run (after --)");
        // An empty value (an unset variable in a script) is a mistake, not the default.
        foreach (var name in new[] { "store", "working-directory", "artifact-path", "run", "experiment" })
        {
            if (line.Values(name).Any(string.IsNullOrWhiteSpace)) throw new UsageException($"option '--{name}' is empty");
        }
        var given = line.Value("working-directory");
        var request = new ExperimentRequest
        {
            Run = line.Value("run"),
            Experiment = line.Value("experiment") ?? "exp0",
            Command = line.Rest,
            WorkingDirectory = Path.GetFullPath(given ?? "."),
            WorkingDirectoryGiven = given is not null,
            RemoveWorkingDirectory = line.Has("remove-working-directory"),
            ArtifactRoots = line.Values("artifact-path").Select(Path.GetFullPath).ToArray(),
            Parameters = line.Pairs("param"),
            Tags = line.Values("tag"),
            Queued = line.Has("queued"),
        };
        return (await RunExperimentAsync(request, line.Value("store"), line.Has("quiet"), label: null).ConfigureAwait(false)).Code;
    }

    private static readonly HashSet<string> PlanValued = new(StringComparer.Ordinal) { "index" };
    private static readonly HashSet<string> PlanFlags = new(StringComparer.Ordinal) { "quiet", "help", "leave-run-folder" };
    private static readonly Dictionary<string, string> PlanAliases = new(StringComparer.Ordinal) { ["i"] = "index", ["q"] = "quiet", ["h"] = "help" };

    /// <summary><c>grid-agent plan PLAN.json [--index N]</c>: experiment N of a run's plan (a Slurm array task's, by default).</summary>
    private static async Task<int> PlanAsync(string[] args)
    {
        var line = new CommandLine(args, PlanAliases, PlanValued, PlanFlags, stopAtFirstWord: false);
        if (line.Has("help")) return Print(Help.Plan);
        if (line.Rest.Count != 1) throw new UsageException("give one plan (plan.json in the run's folder)");
        var indexText = line.Value("index") ?? Environment.GetEnvironmentVariable("SLURM_ARRAY_TASK_ID");
        if (!int.TryParse(indexText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index))
            throw new UsageException(indexText is null ? "give --index (or run it as a Slurm array task)" : $"'{indexText}' is not an experiment number");
        var planPath = Path.GetFullPath(line.Rest[0]);
        RunPlan plan;
        ExperimentRequest request;
        try
        {
            plan = RunPlan.Read(planPath);
            request = PlannedRun.Request(plan, index);
            Directory.CreateDirectory(request.WorkingDirectory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException or ArgumentOutOfRangeException)
        {
            return Fail(AgentFailed, ex.Message);
        }
        var label = GridNames.ExperimentId(plan.Run, request.Experiment);
        var (code, ended) = await RunExperimentAsync(request, plan.Store, line.Has("quiet"), label).ConfigureAwait(false);
        // As the task script does: only after the experiment has ended here (not after a refusal).
        // Under a sweep (--leave-run-folder) the supervisor does it once every experiment has had its turn.
        if (ended && request.RemoveWorkingDirectory && !line.Has("leave-run-folder")) await PlannedRun.RemoveRunFolderIfEndedAsync(plan, planPath, CancellationToken.None).ConfigureAwait(false);
        return code;
    }

    /// <summary>Runs the experiment to its end; the exit code the process ends with, and whether the experiment ended here (its agent ran to its end).</summary>
    /// <param name="label">The experiment's name in messages when it comes from a plan (whose errors are not usage errors), else null.</param>
    private static async Task<(int Code, bool Ended)> RunExperimentAsync(ExperimentRequest request, string? store, bool quiet, string? label)
    {
        void Warn(string w) { if (!quiet) Console.Error.WriteLine($"grid-agent: warning: {w}"); }
        // One experiment per process: what its script leaves behind is given to this process, and
        // ended with the script, as Slurm ends a step's processes.
        request = request with { EndsLeftovers = ScriptProcesses.BecomeSubreaper() };
        var fromCommandLine = label is null;
        string run, experiment;
        CaptureOptions options;
        GridCatalog catalog;
        try
        {
            (run, experiment, options) = ExperimentInvocation.Prepare(request, Warn);
        }
        catch (GridException ex)
        {
            // A bad name on the command line is a usage error; in a plan, the plan's.
            if (label is null) throw new UsageException(ex.Message);
            return (Fail(AgentFailed, $"{label}: {ex.ErrorId}: {ex.Message}"), false);
        }
        label ??= GridNames.ExperimentId(run, experiment);
        try
        {
            var location = StoreSettings.Resolve(store).Location;
            if (!StoreSettings.IsS3(location)) location = Path.GetFullPath(location);
            catalog = Catalogs.Open(location);
        }
        catch (GridException ex)
        {
            // A store location given on the command line that is not one is a usage error; a saved
            // setting that cannot be read, or a plan's store, is not.
            if (fromCommandLine && store is not null && ex.Kind == GridErrorKind.InvalidArgument) throw new UsageException(ex.Message);
            return (Fail(AgentFailed, $"{label}: {ex.ErrorId}: {ex.Message}"), false);
        }
        if (_signals?.Early is { } early)
        {
            // Stopped before it began: nothing is claimed, nothing runs.
            return (Fail(_signals.EarlyExitCode, $"{label}: {early} came before the experiment started; nothing ran."), false);
        }
        try
        {
            var outcome = await ExperimentInvocation.RunAsync(catalog, run, experiment, options, Warn, CancellationToken.None, _signals).ConfigureAwait(false);
            if (outcome.ExitCode < 0)
            {
                // Stopped (Stop-GridRun, Remove-GridRun) while it waited in the queue: nothing ran.
                return (Fail(AgentFailed, $"{label} was stopped before it started; nothing ran."), true);
            }
            if (!quiet && outcome.Experiment is { } e) Console.Error.WriteLine($"grid-agent: {Help.Summary(e, outcome.ExitCode)}");
            return (outcome.ExitCode, true);
        }
        catch (GridException ex)
        {
            // Refused, or the store would not take the experiment (or, past the final sync's
            // patience, its end): the error's id and message, never a secret.
            return (Fail(AgentFailed, $"{label}: {ex.ErrorId}: {ex.Message}"), false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A folder (the store's, the working folder) that cannot be read or written; the message names it.
            return (Fail(AgentFailed, $"{label}: {ex.Message}"), false);
        }
    }

    private static int Print(string text)
    {
        Console.Out.WriteLine(text);
        return 0;
    }

    private static int Fail(int code, string message)
    {
        Console.Error.WriteLine($"grid-agent: {message}");
        return code;
    }
}
