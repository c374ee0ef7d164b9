using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Launch;

/// <summary>
/// What GridArtifacts says to Slurm and reads back: the job script and sbatch's arguments, and the
/// parsing of what sbatch, scontrol and squeue print. Pure text in and out, so it is tested without
/// a cluster; <see cref="SlurmClient"/> runs the commands.
/// </summary>
public static class Slurm
{
    /// <summary>The task script every array task runs: experiment <c>exp$SLURM_ARRAY_TASK_ID</c> of the plan.</summary>
    public const string TaskScriptName = "GridArtifacts.PlannedExperiment.ps1";

    /// <summary>
    /// The batch script of a run: grid-agent runs the planned experiment of this task, as the step's
    /// own process (exec), so the agent is what Slurm signals and its exit code is the task's. Where
    /// the executable does not run (no <paramref name="agent"/>, or a node of another platform), pwsh
    /// runs the module's task script instead, and the task's output says so.
    /// </summary>
    /// <param name="pwsh">pwsh on the nodes: its executable, and its pwsh.dll when it runs under the dotnet host.</param>
    /// <param name="killWait">Slurm's KillWait in seconds (the agent's time between SIGTERM and SIGKILL), or null when unknown.</param>
    /// <param name="agent">grid-agent on the nodes, or null to run every task under pwsh.</param>
    public static string JobScript(string run, string version, IReadOnlyList<string> pwsh, string taskScript, string planPath, int? killWait, string? agent = null)
    {
        var b = new StringBuilder();
        b.Append("#!/bin/bash\n");
        b.Append("# Written by Start-GridRun for run ").Append(run).Append(" (GridArtifacts ").Append(version).Append(").\n");
        b.Append("# Array task i runs experiment exp<i> of plan.json under its capture agent.\n");
        // The agent's time between SIGTERM and SIGKILL: KillWait, unless the submitter set it (a
        // --signal=B:TERM@120 warning gives the agent those 120 s).
        if (killWait is { } wait) b.Append("export GRID_SIGNAL_GRACE=\"${GRID_SIGNAL_GRACE:-").Append(wait.ToString(CultureInfo.InvariantCulture)).Append("}\"\n");
        if (agent is not null)
        {
            // The executable is asked for its version first (a few milliseconds): a node of another
            // platform, one without it, or one with another release's, runs the task under pwsh
            // rather than failing it.
            b.Append("agent=").Append(Quote(agent)).Append('\n');
            b.Append("if [ \"$(\"$agent\" version 2>/dev/null)\" = ").Append(Quote("grid-agent " + version)).Append(" ]; then\n");
            b.Append("  exec \"$agent\" plan ").Append(Quote(planPath)).Append(" --index \"$SLURM_ARRAY_TASK_ID\"\n");
            b.Append("fi\n");
            b.Append("echo \"GridArtifacts: $agent does not run on $(hostname) ($(uname -sm)), or is not grid-agent ").Append(version).Append("; this task runs under pwsh.\" >&2\n");
        }
        b.Append("exec");
        foreach (var a in pwsh) b.Append(' ').Append(Quote(a));
        b.Append(" -NoProfile -NonInteractive -File ").Append(Quote(taskScript))
         .Append(" -PlanPath ").Append(Quote(planPath)).Append(" -Index \"$SLURM_ARRAY_TASK_ID\"\n");
        return b.ToString();
    }

    /// <summary>
    /// sbatch's arguments: one array of <paramref name="count"/> tasks, at most <paramref name="throttle"/>
    /// at once, named grid-&lt;run&gt;, run in the run's folder with each task's output in slurm/&lt;i&gt;.out;
    /// then the user's own options, then the script.
    /// </summary>
    public static List<string> SubmitArguments(string run, int count, int throttle, string runFolder, IEnumerable<string> extra, string script)
    {
        var args = new List<string>
        {
            "--parsable",
            $"--array=0-{count - 1}%{throttle}",
            $"--job-name=grid-{run}",
            $"--output={Path.Combine(runFolder, "slurm", "%a.out")}",
            $"--chdir={runFolder}",
        };
        args.AddRange(extra);
        args.Add(script);
        return args;
    }

    /// <summary>The options a user may not pass in -SchedulerArgument (they would break which task runs which experiment), or null.</summary>
    public static string? ReservedOption(string argument)
    {
        foreach (var reserved in new[] { "--array", "-a", "--parsable", "--wrap" })
        {
            if (argument == reserved || argument.StartsWith(reserved + "=", StringComparison.Ordinal)) return reserved;
        }
        if (argument.StartsWith("-a", StringComparison.Ordinal) && !argument.StartsWith("--", StringComparison.Ordinal) && argument.Length > 2 && char.IsDigit(argument[2])) return "-a";
        return null;
    }

    /// <summary>sbatch --parsable's answer: <c>jobid</c> or <c>jobid;cluster</c>.</summary>
    /// <exception cref="FormatException">Not a job id.</exception>
    public static (string JobId, string? Cluster) ParseSubmitted(string stdout)
    {
        var line = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "";
        var parts = line.Split(';', 2);
        if (parts[0].Length == 0 || !parts[0].All(char.IsAsciiDigit) || !CatalogIndex.IsValidJobPart(parts[0]))
            throw new FormatException($"sbatch answered '{line}', not a job id.");
        var cluster = parts.Length > 1 && CatalogIndex.IsValidJobPart(parts[1]) ? parts[1] : null;
        return (parts[0], cluster);
    }

    /// <summary><c>scontrol show config</c>'s <c>Name = value</c> lines, by name.</summary>
    public static Dictionary<string, string> ParseConfig(string text)
    {
        var d = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in text.Split('\n'))
        {
            var eq = line.IndexOf('=');
            if (eq <= 0) continue;
            var name = line[..eq].Trim();
            if (name.Length == 0 || name.Contains(' ')) continue;
            d[name] = line[(eq + 1)..].Trim();
        }
        return d;
    }

    /// <summary>KillWait in seconds (<c>30 sec</c>), or null.</summary>
    public static int? KillWait(IReadOnlyDictionary<string, string> config) =>
        config.TryGetValue("KillWait", out var v) && int.TryParse(v.Split(' ')[0], NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : null;

    /// <summary>ClusterName, as a job key holds it, or null.</summary>
    public static string? ClusterName(IReadOnlyDictionary<string, string> config) =>
        config.TryGetValue("ClusterName", out var v) && CatalogIndex.IsValidJobPart(v) ? v : null;

    /// <summary>The squeue format <see cref="ParseQueue"/> reads: array job, array task, state, exit status.</summary>
    public const string QueueFormat = "ArrayJobID:|,ArrayTaskID:|,State:|,exit_code:|";

    /// <summary>
    /// One line of squeue for an array job: a task of its own (<see cref="Task"/>), or the tasks that
    /// never became jobs of their own (null; cancelled while pending, they stay one line).
    /// <see cref="WaitStatus"/> is the raw status (exit code times 256, plus the signal).
    /// </summary>
    public sealed record TaskLine(string JobId, int? Task, string State, int? WaitStatus)
    {
        public int? ExitCode => WaitStatus is { } w ? (w >> 8) & 0xff : null;
        public int? Signal => WaitStatus is { } w && (w & 0x7f) != 0 ? w & 0x7f : null;
    }

    /// <summary>squeue -h -r -t all -O <see cref="QueueFormat"/>'s lines (others are passed over).</summary>
    public static List<TaskLine> ParseQueue(string stdout)
    {
        var lines = new List<TaskLine>();
        foreach (var raw in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var f = raw.Split('|');
            if (f.Length < 3 || f[0].Length == 0 || !f[0].All(char.IsAsciiDigit)) continue;
            int? task = int.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out var t) ? t : null;
            if (task is null && f[1] != "N/A") continue; // a pending range ("2-3%1") is pending: nothing to decide
            int? status = f.Length > 3 && int.TryParse(f[3], NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : null;
            // "CANCELLED by 0" and the like: the first word is the state.
            lines.Add(new TaskLine(f[0], task, f[2].Split(' ')[0].ToUpperInvariant(), status));
        }
        return lines;
    }

    /// <summary>States a task has ended in (the rest are pending, running, or on their way).</summary>
    public static bool IsEnded(string state) => state is "COMPLETED" or "FAILED" or "CANCELLED" or "TIMEOUT" or "NODE_FAIL"
        or "OUT_OF_MEMORY" or "BOOT_FAIL" or "DEADLINE" or "PREEMPTED" or "REVOKED" or "SPECIAL_EXIT";

    /// <summary>
    /// How a queued experiment ends when Slurm has ended its task before the task's agent started,
    /// or null while that cannot be told (the task is pending or running, or squeue said nothing of it).
    /// <paramref name="lines"/> are squeue's lines of the job; <paramref name="jobKnown"/> is false
    /// when squeue no longer knows the job (it ended over MinJobAge ago).
    /// </summary>
    public static (GridStatus Status, string Reason, int? ExitCode)? EndOfQueued(string jobId, int index, IReadOnlyList<TaskLine> lines, bool jobKnown)
    {
        var task = $"{jobId}_{index}";
        if (!jobKnown)
        {
            return (GridStatus.Failed, $"Slurm task {task} ended before its agent started: Slurm no longer knows job {jobId} (it ended over MinJobAge ago); see its output in slurm/{index}.out beside plan.json.", null);
        }
        var own = lines.FirstOrDefault(l => l.JobId == jobId && l.Task == index);
        if (own is null)
        {
            // Tasks cancelled while pending never become jobs: one line stands for all of them.
            var rest = lines.FirstOrDefault(l => l.JobId == jobId && l.Task is null);
            return rest is { State: "CANCELLED" } ? (GridStatus.Stopped, $"Slurm task {task} was cancelled before it started.", null) : null;
        }
        if (!IsEnded(own.State)) return null;
        // Cancelled (scancel) is what someone asked for, whether it had started or not.
        if (own.State == "CANCELLED") return (GridStatus.Stopped, $"Slurm task {task} was cancelled before its agent started.", null);
        var how = own.Signal is { } sig ? $"signal {sig}" : $"exit {own.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "unknown"}";
        return (GridStatus.Failed, $"Slurm task {task} ended {own.State} ({how}) before its agent started; see slurm/{index}.out beside plan.json.", own.ExitCode);
    }

    /// <summary>Slurm's name of some tasks of an array job, runs of indexes as ranges: <c>1234_[0-3,5,9]</c>.</summary>
    public static string Tasks(string jobId, IEnumerable<int> indexes)
    {
        var sorted = indexes.Distinct().Order().ToList();
        var parts = new List<string>();
        for (var i = 0; i < sorted.Count;)
        {
            var j = i;
            while (j + 1 < sorted.Count && sorted[j + 1] == sorted[j] + 1) j++;
            parts.Add(j == i ? sorted[i].ToString(CultureInfo.InvariantCulture) : $"{sorted[i].ToString(CultureInfo.InvariantCulture)}-{sorted[j].ToString(CultureInfo.InvariantCulture)}");
            i = j + 1;
        }
        return $"{jobId}_[{string.Join(',', parts)}]";
    }

    /// <summary>A word for bash, in single quotes.</summary>
    public static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";
}

/// <summary>Runs Slurm's commands (sbatch, scancel, squeue, scontrol) as processes, without a shell.</summary>
public static class SlurmClient
{
    public sealed record Answer(int ExitCode, string Out, string Err);

    /// <summary>Whether a Slurm command is on PATH.</summary>
    public static bool Has(string tool) => Find(tool) is not null;

    private static string? Find(string tool)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var p = Path.Combine(dir, tool);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>Runs a Slurm command to its end (at most <paramref name="timeout"/>, 60 s by default).</summary>
    /// <exception cref="GridException">SchedulerNotFound: it is not on PATH; SchedulerTimedOut: it did not answer.</exception>
    public static Answer Run(string tool, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(Find(tool) ?? tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi) ?? throw new Win32Exception(); }
        catch (Win32Exception ex)
        {
            throw new GridException(GridErrorKind.NotFound, "SchedulerNotFound",
                $"Slurm's '{tool}' could not be started ({ex.Message}). Run this where Slurm's commands are on PATH (a login node of the cluster).", tool, ex);
        }
        using (p)
        {
            var err = p.StandardError.ReadToEndAsync();
            var output = p.StandardOutput.ReadToEndAsync();
            if (!p.WaitForExit(timeout ?? TimeSpan.FromSeconds(60)))
            {
                try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                throw new GridException(GridErrorKind.StoreUnavailable, "SchedulerTimedOut", $"Slurm's '{tool}' did not answer within {(timeout ?? TimeSpan.FromSeconds(60)).TotalSeconds:0} s.", tool);
            }
            p.WaitForExit();
            return new Answer(p.ExitCode, output.GetAwaiter().GetResult(), err.GetAwaiter().GetResult().Trim());
        }
    }

    private static readonly Lazy<IReadOnlyDictionary<string, string>?> LocalConfig = new(() =>
    {
        try
        {
            var a = Run("scontrol", new[] { "show", "config" }, TimeSpan.FromSeconds(20));
            return a.ExitCode == 0 ? Slurm.ParseConfig(a.Out) : null;
        }
        catch (GridException) { return null; }
    });

    /// <summary>The configuration of the cluster this machine's Slurm commands talk to (read once a session), or null.</summary>
    public static IReadOnlyDictionary<string, string>? Config() => LocalConfig.Value;
}
