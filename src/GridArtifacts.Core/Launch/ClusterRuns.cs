using System.Globalization;
using GridArtifacts.Core;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Launch;

/// <summary>
/// What the cmdlets do with runs whose experiments a cluster's scheduler starts: submit them, stop
/// them, and end the queued experiments whose tasks ended before their agents started.
/// </summary>
public static class ClusterRuns
{
    /// <summary>
    /// Submits a run's planned experiments as one Slurm array job (task i runs expI) and returns the
    /// job. The job script is written beside the plan; each task's own output goes to slurm/&lt;i&gt;.out.
    /// </summary>
    /// <exception cref="GridException">SchedulerNotFound, or SchedulerRefused with sbatch's message.</exception>
    public static RunJob SubmitSlurm(string run, int count, int throttle, string runFolder, string planPath, IReadOnlyList<string> extra,
        IReadOnlyList<string> pwsh, string? agent, string moduleFolder, string version)
    {
        var config = SlurmClient.Config();
        var script = Path.Combine(runFolder, "slurm.sh");
        Directory.CreateDirectory(Path.Combine(runFolder, "slurm"));
        File.WriteAllText(script, Slurm.JobScript(run, version, pwsh, Path.Combine(moduleFolder, Slurm.TaskScriptName), planPath,
            config is null ? null : Slurm.KillWait(config), agent));
        var answer = SlurmClient.Run("sbatch", Slurm.SubmitArguments(run, count, throttle, runFolder, extra, script));
        if (answer.ExitCode != 0)
        {
            throw new GridException(GridErrorKind.InvalidArgument, "SchedulerRefused",
                $"sbatch refused the job of run '{run}' (exit code {answer.ExitCode}): {(answer.Err.Length > 0 ? answer.Err : answer.Out.Trim())}", run);
        }
        try
        {
            var (id, cluster) = Slurm.ParseSubmitted(answer.Out);
            return new RunJob(GridScheduler.Slurm, cluster ?? (config is null ? null : Slurm.ClusterName(config)), id);
        }
        catch (FormatException ex)
        {
            throw new GridException(GridErrorKind.InvalidArgument, "SchedulerRefused", $"sbatch did not submit the job of run '{run}': {ex.Message}", run, ex);
        }
    }

    /// <summary>
    /// Stops experiments (active ones; the rest are passed over): a queued one of a Slurm run has its
    /// task cancelled (scancel) and is ended Stopped here; a running one gets a stop request, so its
    /// agent stops the script, syncs and ends Stopped. A queued one of a Local run is ended here too,
    /// and one an agent took meanwhile stops on its request.
    /// </summary>
    public static async Task StopAsync(GridCatalog catalog, IReadOnlyList<GridExperiment> experiments, Action<object> post, CancellationToken ct)
    {
        var active = experiments.Where(e => e.Status.IsActive()).ToList();
        if (active.Count == 0) return;
        // Only queued ones have tasks to cancel: the jobs of their runs alone are looked up.
        var queued = active.Where(e => e.Status == GridStatus.Queued).ToList();
        var labels = queued.Count == 0 ? new Dictionary<string, RunLabels>()
            : await catalog.Runs.GetLabelsAsync(queued.Select(e => e.Run).Distinct().ToList(), ct).ConfigureAwait(false);
        foreach (var group in queued.GroupBy(e => e.Run))
        {
            if (labels[group.Key].Job is not { Scheduler: GridScheduler.Slurm } job) continue;
            // Before the stop requests: a task cancelled now never starts.
            var tasks = Slurm.Tasks(job.Id, group.Select(e => e.Index));
            try
            {
                var answer = SlurmClient.Run("scancel", new[] { "--quiet", tasks });
                if (answer.ExitCode != 0) post(new WarningMessage($"scancel {tasks} failed (exit code {answer.ExitCode}): {answer.Err}. Their experiments are ended Stopped all the same; a task that starts later runs nothing."));
            }
            catch (GridException ex)
            {
                post(new WarningMessage($"{tasks} were not cancelled: {ex.Message} Their experiments are ended Stopped all the same; a task that starts later runs nothing."));
            }
        }
        await Task.WhenAll(active.Select(async e =>
        {
            // A queued one is ended here, so its agent (or task), starting later, has nothing to run
            // and recreates nothing; one an agent took meanwhile stops on its request.
            if (e.Status == GridStatus.Queued && await catalog.Claims.StopQueuedAsync(e.Run, e.Experiment, ct).ConfigureAwait(false)) return;
            await catalog.Writer.RequestStopAsync(e.Run, e.Experiment, ct).ConfigureAwait(false);
        })).ConfigureAwait(false);
    }

    /// <summary>
    /// Ends the queued experiments of Slurm runs whose tasks Slurm shows ended (they failed before
    /// their agents started: pwsh missing on the node, a time limit shorter than its start, a node
    /// lost), with the task's state as the reason; tasks cancelled while pending end Stopped. Asks
    /// squeue once for every job named, and only where squeue is on PATH and talks to the job's
    /// cluster. Returns the runs it changed.
    /// </summary>
    public static async Task<IReadOnlySet<string>> EndStrandedAsync(GridCatalog catalog, IReadOnlyList<(string Run, RunJob Job, IReadOnlyList<string> Queued)> runs,
        Action<object> post, CancellationToken ct)
    {
        var changed = new HashSet<string>(StringComparer.Ordinal);
        var slurm = runs.Where(r => r.Job.Scheduler == GridScheduler.Slurm && r.Queued.Count > 0).ToList();
        if (slurm.Count == 0 || !SlurmClient.Has("squeue")) return changed;
        var config = SlurmClient.Config();
        if (config is null) return changed;
        var here = Slurm.ClusterName(config);
        // A job of another cluster is never judged by this one's queue (its ids are its own).
        slurm = slurm.Where(r => r.Job.Cluster is null || here is null || string.Equals(r.Job.Cluster, here, StringComparison.OrdinalIgnoreCase)).ToList();
        if (slurm.Count == 0) return changed;
        var ids = slurm.Select(r => r.Job.Id).Distinct(StringComparer.Ordinal).ToList();
        SlurmClient.Answer answer;
        try { answer = SlurmClient.Run("squeue", new[] { "-h", "-r", "-t", "all", "-j", string.Join(',', ids), "-O", Slurm.QueueFormat }, TimeSpan.FromSeconds(30)); }
        catch (GridException ex) { post(new VerboseMessage($"squeue was not asked about {string.Join(", ", ids)}: {ex.Message}")); return changed; }
        List<Slurm.TaskLine> lines;
        if (answer.ExitCode == 0) lines = Slurm.ParseQueue(answer.Out);
        else if (answer.Err.Contains("Invalid job id", StringComparison.OrdinalIgnoreCase)) lines = new(); // none of them is known any more
        else
        {
            post(new VerboseMessage($"squeue could not say how jobs {string.Join(", ", ids)} are (exit code {answer.ExitCode}): {answer.Err}"));
            return changed;
        }
        var known = lines.Select(l => l.JobId).ToHashSet(StringComparer.Ordinal);
        foreach (var (run, job, queued) in slurm)
        {
            foreach (var experiment in queued)
            {
                if (Slurm.EndOfQueued(job.Id, GridNames.ExperimentIndex(experiment), lines, known.Contains(job.Id)) is not { } end) continue;
                if (await catalog.Claims.EndQueuedAsync(run, experiment, end.Status, end.Reason, end.ExitCode, ct).ConfigureAwait(false))
                {
                    changed.Add(run);
                    post(new WarningMessage($"{GridNames.ExperimentId(run, experiment)} ended {end.Status}: {end.Reason}"));
                }
            }
        }
        return changed;
    }

    /// <summary>The queued experiments of the Slurm runs among <paramref name="runs"/>, as their listing showed them (no request).</summary>
    public static List<(string Run, RunJob Job, IReadOnlyList<string> Queued)> QueuedOf(IEnumerable<GridRun> runs) =>
        runs.Where(r => r.Scheduler != GridScheduler.Local && r.JobId is not null && r.QueuedExperiments.Count > 0)
            .Select(r => (r.Name, new RunJob(r.Scheduler, r.Cluster, r.JobId!), r.QueuedExperiments)).ToList();
}
