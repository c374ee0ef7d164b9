namespace GridArtifacts.Core.Capture;

/// <summary>What the agent runs and watches.</summary>
public sealed record CaptureOptions
{
    public required string FileName { get; init; }
    public IReadOnlyList<string> Arguments { get; init; } = Array.Empty<string>();
    /// <summary>The experiment's own working folder; every file created or changed under it is an artifact.</summary>
    public required string WorkingDirectory { get; init; }
    /// <summary>More folders whose new or changed files are artifacts, stored under their folder's name.</summary>
    public IReadOnlyList<string> ArtifactRoots { get; init; } = Array.Empty<string>();
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = new Dictionary<string, string>();
    /// <summary>Tags put on the experiment once this agent holds it (checked with <see cref="GridNames.CheckTags"/>).</summary>
    public IReadOnlyList<string> Tags { get; init; } = Array.Empty<string>();
    /// <summary>A file is uploaded once it has not changed for this long.</summary>
    public TimeSpan SettleTime { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>
    /// A pass this often (sooner when a change is noticed): it looks at the paths the change
    /// notifications named and the files not yet settled, not at every file.
    /// </summary>
    public TimeSpan RescanInterval { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>
    /// A full rescan of every folder at least this far apart (and never more than a twentieth of the
    /// time, however long one takes), for changes no notification told of (a full notification queue,
    /// a network folder written from another machine). Every pass is a full one where notifications
    /// cannot be had, and the final sync always is.
    /// </summary>
    public TimeSpan FullRescanInterval { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>
    /// How long the agent waits after claiming the experiment before it reads the claim back: two
    /// agents that start at the same moment both write a claim, and only the one whose claim is
    /// still there afterwards goes on.
    /// </summary>
    public TimeSpan ClaimSettle { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>
    /// The experiment was queued (by Start-GridRun, or a scheduler's submit): it runs only if its
    /// record is still there, so one removed meanwhile is not created again, nor its run.
    /// </summary>
    public bool Queued { get; init; }
    /// <summary>How long the final sync keeps trying files and records the store would not take (an outage at the end).</summary>
    public TimeSpan FinalSyncPatience { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>
    /// Once the agent is stopped by a signal (<see cref="CaptureAgent.StopBySignal"/>), the time from
    /// the signal by which the end is done: the script's own exit, the final sync, the logs, the
    /// sealed manifest and the final status (what is still pending then is left out, and counted).
    /// Null: only <see cref="FinalSyncPatience"/> bounds it. See <see cref="StopBudgetFor"/>.
    /// </summary>
    public TimeSpan? StopBudget { get; init; }
    /// <summary>
    /// Removes the working folder at the end when the final sync stored every file in it (the folders
    /// Start-GridRun makes); it is kept, with a warning that says where and why, when anything in it
    /// did not reach the store. The record names the folder until it is removed.
    /// </summary>
    public bool RemoveWorkingDirectory { get; init; }
    /// <summary>
    /// Kills every process the script leaves behind when it exits, as Slurm does at a step's end and a
    /// container's runtime when its first process exits: what they held open (the script's output, a
    /// file half written) is then final, and the end does not wait for them. Only where the agent is
    /// alone in its process and that process adopts the script's orphans (grid-agent makes itself
    /// their subreaper); elsewhere only what a signal's stop saw is killed.
    /// </summary>
    public bool EndsLeftovers { get; init; }

    /// <summary>The environment variable with the seconds between a scheduler's SIGTERM and its SIGKILL (Slurm's KillWait).</summary>
    public const string SignalGraceVariable = "GRID_SIGNAL_GRACE";
    /// <summary>The grace when none is given: Kubernetes' default terminationGracePeriodSeconds and ECS's stop timeout.</summary>
    public static readonly TimeSpan DefaultSignalGrace = TimeSpan.FromSeconds(30);
    /// <summary>What the agent keeps back from the grace: pwsh's own exit and the last record's write.</summary>
    public static readonly TimeSpan SignalGraceReserve = TimeSpan.FromSeconds(3);
    /// <summary>The shortest stop budget, however short the grace.</summary>
    public static readonly TimeSpan MinStopBudget = TimeSpan.FromSeconds(2);

    /// <summary>
    /// The stop budget for a grace of <paramref name="grace"/> seconds (the value of
    /// <see cref="SignalGraceVariable"/>): the grace less <see cref="SignalGraceReserve"/>, never under
    /// <see cref="MinStopBudget"/>. Unset or empty: <see cref="DefaultSignalGrace"/>; a value that is
    /// not a number of seconds (0 or more) is that default too, and <paramref name="problem"/> says why.
    /// </summary>
    public static TimeSpan StopBudgetFor(string? grace, out string? problem)
    {
        problem = null;
        var seconds = DefaultSignalGrace.TotalSeconds;
        if (!string.IsNullOrWhiteSpace(grace))
        {
            if (double.TryParse(grace.Trim(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var given)
                && double.IsFinite(given) && given >= 0)
            {
                seconds = Math.Min(given, TimeSpan.FromDays(1).TotalSeconds);
            }
            else
            {
                problem = $"{SignalGraceVariable}='{grace}' is not a number of seconds; the agent takes {DefaultSignalGrace.TotalSeconds:0} s between a SIGTERM and the SIGKILL that follows it.";
            }
        }
        return TimeSpan.FromSeconds(Math.Max(MinStopBudget.TotalSeconds, seconds - SignalGraceReserve.TotalSeconds));
    }
}
