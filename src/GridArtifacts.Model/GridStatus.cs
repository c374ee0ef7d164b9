namespace GridArtifacts.Model;

/// <summary>What starts a run's experiments.</summary>
public enum GridScheduler
{
    /// <summary>A supervisor process on the machine that started the run (the default).</summary>
    Local,
    /// <summary>A Slurm job array: task i runs expI.</summary>
    Slurm,
}

/// <summary>The life cycle of an experiment; a run's status is derived from its experiments.</summary>
public enum GridStatus
{
    /// <summary>Waiting for a slot under the run's throttle limit.</summary>
    Queued,
    /// <summary>The script is running; artifacts sync while it goes.</summary>
    Running,
    /// <summary>The script has ended; the final sync is under way.</summary>
    Syncing,
    /// <summary>Exit code 0 and every artifact synced.</summary>
    Succeeded,
    /// <summary>Non-zero exit code or a crash; every artifact synced.</summary>
    Failed,
    /// <summary>Stopped on request; every artifact synced.</summary>
    Stopped,
    /// <summary>The record says it is still going but its agent stopped writing a heartbeat.</summary>
    Lost,
}

public static class GridStatusExtensions
{
    /// <summary>Active statuses are what the product's <c>grid status</c> showed.</summary>
    public static bool IsActive(this GridStatus status) =>
        status is GridStatus.Queued or GridStatus.Running or GridStatus.Syncing;

    /// <summary>Finished statuses are what the product's <c>grid history</c> showed.</summary>
    public static bool IsFinished(this GridStatus status) => !status.IsActive();

    /// <summary>
    /// A run's status from its experiments: active while any experiment is active
    /// (Running before Syncing before Queued), otherwise the worst final status.
    /// </summary>
    public static GridStatus Aggregate(IEnumerable<GridStatus> statuses)
    {
        // Which statuses occur, as bits (a listing aggregates every run's experiments).
        var seen = 0;
        foreach (var s in statuses) seen |= 1 << (int)s;
        if (seen == 0) return GridStatus.Queued;
        foreach (var s in AggregateOrder)
        {
            if ((seen & (1 << (int)s)) != 0) return s;
        }
        return GridStatus.Succeeded;
    }

    private static readonly GridStatus[] AggregateOrder =
        { GridStatus.Running, GridStatus.Syncing, GridStatus.Queued, GridStatus.Lost, GridStatus.Failed, GridStatus.Stopped };
}
