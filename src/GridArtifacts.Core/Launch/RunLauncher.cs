using System.Diagnostics;
using GridArtifacts.Core.Capture;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Launch;

/// <summary>What Start-GridRun asks for, checked and resolved (full paths) by the cmdlet.</summary>
public sealed record LaunchRequest
{
    /// <summary>The run's name (checked), or null for a generated one.</summary>
    public string? Name { get; init; }
    public IReadOnlyList<string> Tags { get; init; } = Array.Empty<string>();
    /// <summary>The script's full path (the FilePath set), or null for <see cref="Command"/>.</summary>
    public string? Script { get; init; }
    /// <summary>A command line for the system shell (the Command set).</summary>
    public string Command { get; init; } = "";
    /// <summary>Each parameter's values; more than one makes a sweep.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>>? Parameters { get; init; }
    public int ThrottleLimit { get; init; } = 4;
    public IReadOnlyList<string> ArtifactPath { get; init; } = Array.Empty<string>();
    public string WorkRoot { get; init; } = "";
    public bool KeepWorkingDirectory { get; init; }
    public GridScheduler Scheduler { get; init; } = GridScheduler.Local;
    public IReadOnlyList<string> SchedulerArguments { get; init; } = Array.Empty<string>();
    /// <summary>This PowerShell: its executable, and its pwsh.dll when it runs under the dotnet host.</summary>
    public IReadOnlyList<string> Pwsh { get; init; } = new[] { "pwsh" };
    /// <summary>The module's folder (the supervisor and the task script are there).</summary>
    public string ModuleFolder { get; init; } = "";
    public string Version { get; init; } = "";

    /// <summary>grid-agent where the experiments run (the same path on a cluster's every node), or null to run them under pwsh (<see cref="AgentExecutable.Find"/>).</summary>
    public string? Agent { get; init; }

    /// <summary>pwsh where the experiments run: on a cluster's nodes $env:GRID_PWSH when set, else this PowerShell (the same path on every node).</summary>
    public IReadOnlyList<string> RunnerPwsh =>
        Scheduler != GridScheduler.Local && Environment.GetEnvironmentVariable("GRID_PWSH") is { Length: > 0 } configured ? new[] { configured } : Pwsh;

    /// <summary>The experiments, one a combination of the parameters' values, each with its argument list.</summary>
    public List<(Dictionary<string, string> Parameters, string[] Command)> Experiments() =>
        Sweep.Expand(Parameters).Select(p => (p, Script is null ? Sweep.ForCommand(Command, p, OperatingSystem.IsWindows()) : Sweep.ForScript(Script, p, RunnerPwsh))).ToList();
}

/// <summary>
/// Starts runs: creates the run and queues its experiments in the store, makes the run's own folder
/// with its plan, and hands the plan to what starts the experiments (a supervisor on this machine,
/// detached from this session, or one Slurm array job); then, when asked, waits for the run to end.
/// </summary>
public sealed class RunLauncher
{
    private readonly GridCatalog _catalog;
    private readonly string _store;

    /// <param name="store">The store's location as the plan names it (the experiments open it again).</param>
    public RunLauncher(GridCatalog catalog, string store)
    {
        _catalog = catalog;
        _store = store;
    }

    /// <summary>The supervisor the module runs for a Local run.</summary>
    public const string SupervisorScriptName = "GridArtifacts.Supervisor.ps1";

    /// <summary>Starts a run as <paramref name="request"/> asks and returns its name.</summary>
    /// <exception cref="GridException">RunExists (a name given is taken: nothing of it changes), a store error, or Slurm's refusal (the queued experiments are then ended Stopped).</exception>
    public async Task<string> StartAsync(LaunchRequest request, Action<object> post, CancellationToken ct)
    {
        var experiments = request.Experiments();
        var now = _catalog.Clock.GetUtcNow();
        RunRecord Record(string name) => new() { Name = name, Created = now, Command = request.Script ?? request.Command, Parameters = Sweep.ToText(request.Parameters) };
        // A taken name is refused (RunExists) and nothing of that run changes; a generated one is drawn again.
        if (request.Name is not null) await _catalog.Writer.CreateRunAsync(Record(request.Name), ct, request.Tags).ConfigureAwait(false);
        var run = request.Name ?? await _catalog.Writer.CreateRunWithNewNameAsync(Record, ct, request.Tags).ConfigureAwait(false);
        await _catalog.Writer.QueueExperimentsAsync(run, experiments.Select(e => (e.Parameters, string.Join(' ', e.Command))).ToList(), now, ct).ConfigureAwait(false);
        ReportEarlierFolders(request.WorkRoot, post);

        // A folder no run used before: a script that resumes from ./checkpoints finds only its own.
        var runFolder = WorkingFolders.CreateRunFolder(request.WorkRoot, run);
        var plan = new RunPlan
        {
            Run = run,
            Store = _store,
            ThrottleLimit = request.ThrottleLimit,
            ArtifactPath = request.ArtifactPath,
            KeepWorkingDirectory = request.KeepWorkingDirectory,
            Experiments = experiments.Select((e, i) => new PlannedExperiment
            {
                Experiment = GridNames.ExperimentName(i),
                WorkingDirectory = Path.Combine(runFolder, GridNames.ExperimentName(i)),
                Parameters = e.Parameters,
                Command = e.Command,
            }).ToList(),
        };
        var planPath = Path.Combine(runFolder, WorkingFolders.PlanFile);
        plan.Write(planPath);
        post(new VerboseMessage($"The experiments of {run} work in '{runFolder}'."));
        if (request.Scheduler == GridScheduler.Slurm) await SubmitAsync(request, plan, runFolder, planPath, post, ct).ConfigureAwait(false);
        else StartDetached(Supervisor(request, planPath), Path.Combine(runFolder, "supervisor.log"));
        return run;
    }

    /// <summary>
    /// Hands the queued experiments to Slurm as one array job and records the job on the run. When
    /// sbatch refuses, the queued experiments are ended Stopped (so the run does not sit Queued) and
    /// the error is thrown.
    /// </summary>
    private async Task SubmitAsync(LaunchRequest request, RunPlan plan, string runFolder, string planPath, Action<object> post, CancellationToken ct)
    {
        var count = plan.Experiments.Count;
        RunJob job;
        try
        {
            job = ClusterRuns.SubmitSlurm(plan.Run, count, plan.ThrottleLimit, runFolder, planPath, request.SchedulerArguments, request.RunnerPwsh, request.Agent, request.ModuleFolder, request.Version);
        }
        catch (GridException)
        {
            for (var i = 0; i < count; i++) await _catalog.Claims.StopQueuedAsync(plan.Run, GridNames.ExperimentName(i), CancellationToken.None).ConfigureAwait(false);
            throw;
        }
        await _catalog.Writer.SetRunJobAsync(plan.Run, job, ct).ConfigureAwait(false);
        post(new VerboseMessage($"Submitted {plan.Run} to Slurm as job {job.Id}{(job.Cluster is null ? "" : $" on cluster {job.Cluster}")}: {count} task(s), at most {plan.ThrottleLimit} at once."));
    }

    /// <summary>
    /// The supervisor of a run on this machine: <c>grid-agent sweep</c>, which starts one grid-agent per
    /// experiment; without the executable, the module's supervisor script under pwsh.
    /// </summary>
    public static string[] Supervisor(LaunchRequest request, string planPath) => request.Agent is { } agent
        ? new[] { agent, "sweep", planPath }
        : request.Pwsh.Concat(new[] { "-NoProfile", "-NonInteractive", "-File", Path.Combine(request.ModuleFolder, SupervisorScriptName), planPath }).ToArray();

    /// <summary>Starts the run's supervisor (<paramref name="argv"/>) in a session of its own (setsid), with no handle on this one.</summary>
    public static void StartDetached(IReadOnlyList<string> argv, string log)
    {
        if (OperatingSystem.IsWindows())
        {
            var psi = new ProcessStartInfo(argv[0]) { UseShellExecute = false, CreateNoWindow = true };
            foreach (var a in argv.Skip(1)) psi.ArgumentList.Add(a);
            Process.Start(psi)?.Dispose();
            return;
        }
        var sh = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        sh.ArgumentList.Add("-c");
        sh.ArgumentList.Add($"setsid {string.Join(' ', argv.Select(Slurm.Quote))} > {Slurm.Quote(log)} 2>&1 < /dev/null &");
        using var p = Process.Start(sh)!;
        p.WaitForExit();
    }

    /// <summary>
    /// Waits for the run to finish, reading it every half second (sooner at first: 0.1 s, growing by
    /// half each time, so a short run is seen ended soon after it is; <paramref name="seen"/> gets each
    /// reading) and returns it as it ended. For a cluster's run, every 5 s, queued experiments whose
    /// tasks ended before their agents started are ended (else the wait would never end).
    /// </summary>
    public async Task<GridRun> WaitAsync(string run, Action<GridRun> seen, Action<object> post, CancellationToken ct)
    {
        var clock = _catalog.Clock;
        var nextCheck = clock.GetUtcNow().AddSeconds(5);
        var pause = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            var current = await _catalog.Runs.GetRunAsync(run, ct).ConfigureAwait(false);
            seen(current);
            if (current.Status.IsFinished()) return current;
            if (current.Scheduler != GridScheduler.Local && clock.GetUtcNow() >= nextCheck)
            {
                await ClusterRuns.EndStrandedAsync(_catalog, ClusterRuns.QueuedOf(new[] { current }), post, ct).ConfigureAwait(false);
                nextCheck = clock.GetUtcNow().AddSeconds(5);
            }
            await Task.Delay(pause, clock, ct).ConfigureAwait(false);
            pause = TimeSpan.FromMilliseconds(Math.Min(500, pause.TotalMilliseconds * 1.5));
        }
    }

    /// <summary>
    /// Says (once per work root in a process) that releases before 0.4.2 left run folders there, which
    /// nothing uses again and nothing removed, and how to remove them.
    /// </summary>
    private static void ReportEarlierFolders(string workRoot, Action<object> post)
    {
        lock (ReportedRoots) { if (!ReportedRoots.Add(workRoot)) return; }
        List<string> earlier;
        try { earlier = WorkingFolders.EarlierLayoutFolders(workRoot); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return; }
        if (earlier.Count == 0) return;
        post(new WarningMessage($"'{workRoot}' holds {earlier.Count} run folder(s) that earlier releases left (such as '{Path.GetFileName(earlier[0])}'); no run uses them again. " +
            $"Remove-GridWorkingDirectory -WorkingRoot '{workRoot}' -WhatIf lists what it would remove: the folders of runs that have ended."));
    }

    private static readonly HashSet<string> ReportedRoots = new(StringComparer.Ordinal);
}
