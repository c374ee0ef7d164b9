using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;

namespace GridArtifacts.Core;

/// <summary>
/// Who writes an experiment: an agent or an import claims it (new, queued, or Lost), and a queued one
/// its scheduler or a stop ends; of two claimants at one moment exactly one goes on.
/// </summary>
public sealed class ExperimentClaims : CatalogPart
{
    private readonly RunReader _runs;
    private readonly RecordWriter _writer;

    internal ExperimentClaims(CatalogContext context, RunReader runs, RecordWriter writer) : base(context) => (_runs, _writer) = (runs, writer);

    /// <summary>
    /// Takes an experiment for one writer (a capture agent, or an import), which then is the only
    /// writer of its record and manifest. <paramref name="claim"/> builds the claimed record from
    /// the one there (null when new) and names the writer in <see cref="ExperimentRecord.Agent"/>.
    /// Refused: an experiment that has ended (ExperimentExists: it is never rewritten), one that a
    /// live writer holds (ExperimentAlreadyRunning), and a queued one unless <paramref name="takeQueued"/>.
    /// A Lost one (its writer's heartbeat is older than <see cref="GridCatalog.LostAfter"/>) is taken over. With
    /// <paramref name="mustExist"/>, a missing record means it was removed: ExperimentRemoved, and
    /// nothing is written.
    /// </summary>
    public async Task<ExperimentRecord> ClaimExperimentAsync(string run, string experiment, Func<ExperimentRecord?, ExperimentRecord> claim,
        bool takeQueued, bool mustExist, CancellationToken ct, TimeSpan? settle = null)
    {
        GridNames.CheckRunName(run);
        GridNames.CheckExperimentName(experiment);
        var key = StoreLayout.ExperimentRecordKey(run, experiment);
        // Asked beside the read (an S3 store asks its server once per process).
        var exclusive = Create.StoreCreatesExclusivelyAsync(ct).AsTask();
        var existing = await _runs.ReadExperimentRecordAsync(run, experiment, ct).ConfigureAwait(false);
        if (existing is null && mustExist) throw Removed(run, experiment);
        if (existing is not null) CheckClaimable(existing, takeQueued);
        // Named by the record as read, before the claim builds on it.
        var over = existing is null ? null : StoreLayout.TakeoverClaimKey(run, experiment, RecordJson.Serialize(existing));
        var readAgent = existing?.Agent;
        var claimed = claim(existing);
        var agent = claimed.Agent ?? throw new ArgumentException("A claim names its writer in Agent.", nameof(claim));
        if (existing is null)
        {
            claimed.Schema = StoreLayout.SchemaVersion;
            claimed.IndexSequence = 0;
            if (await Create.TryCreateAsync(key, RecordJson.Serialize(claimed), settle, ct).ConfigureAwait(false))
            {
                claimed.IndexKey = CatalogIndex.ExperimentKey(claimed, 0);
                await Store.PutAsync(claimed.IndexKey, ReadOnlyMemory<byte>.Empty, ct).ConfigureAwait(false);
                return claimed;
            }
            // Another writer created it at the same moment.
            var winner = await _runs.ReadExperimentRecordAsync(run, experiment, ct).ConfigureAwait(false);
            if (winner is not null) CheckClaimable(winner, takeQueued);
            throw HeldBy(winner, run, experiment);
        }
        if (await exclusive.ConfigureAwait(false))
        {
            // Taking over a queued or Lost record where the store creates exclusively: every claimant
            // of this version of the record creates the same claim key, and the store lets one create
            // it; no settle, no read back.
            if (!await Create.TryCreateAsync(over!, System.Text.Encoding.UTF8.GetBytes(agent), settle, ct).ConfigureAwait(false))
            {
                ExperimentRecord? winner;
                try { winner = await _runs.ReadExperimentRecordAsync(run, experiment, ct).ConfigureAwait(false); }
                catch (GridException ex) when (ex.Kind == GridErrorKind.DamagedRecord)
                {
                    // Read while the winner writes it, on a server whose writes are not atomic (s3rver): held, by whom is not known yet.
                    throw HeldBy(null, run, experiment);
                }
                if (winner is null) throw Removed(run, experiment);
                // The winner may not have written its record yet: then it is named by no one.
                if (winner.Agent != readAgent) CheckClaimable(winner, takeQueued);
                throw HeldBy(winner.Agent != readAgent ? winner : null, run, experiment);
            }
        }
        else
        {
            // Elsewhere the last claim written stands, and a writer that reads back another's claim
            // after the settle time stops before doing anything.
            await Store.PutAsync(key, RecordJson.Serialize(claimed), ct).ConfigureAwait(false);
            await Task.Delay(settle ?? ClaimSettle, Clock, ct).ConfigureAwait(false);
            var back = await _runs.ReadExperimentRecordAsync(run, experiment, ct).ConfigureAwait(false);
            if (back is null) throw Removed(run, experiment);
            if (back.Agent != agent) throw HeldBy(back, run, experiment);
        }
        // Held: the record again with the next index sequence, and its key (the one before it goes).
        claimed.IndexKey = existing.IndexKey;
        claimed.IndexSequence = existing.IndexSequence;
        await _writer.WriteExperimentRecordAsync(claimed, ct).ConfigureAwait(false);
        return claimed;
    }

    private void CheckClaimable(ExperimentRecord record, bool takeQueued)
    {
        var id = GridNames.ExperimentId(record.Run, record.Experiment);
        var status = EffectiveStatus(record);
        if (status.IsFinished() && status != GridStatus.Lost)
        {
            throw new GridException(GridErrorKind.AlreadyExists, "ExperimentExists",
                $"{id} already exists in store '{Location}' and has ended ({status}); an ended experiment is never rewritten, so nothing was changed. " +
                $"Use another experiment (-Experiment exp{NextFreeHint(record)}) or another run, or remove it first with 'Remove-GridExperiment {id}'.", id);
        }
        if (status == GridStatus.Queued && !takeQueued)
        {
            throw new GridException(GridErrorKind.AlreadyExists, "ExperimentExists",
                $"{id} already exists in store '{Location}': it is queued to run under its capture agent, so nothing was changed. Use another experiment or run.", id);
        }
        if (status is GridStatus.Running or GridStatus.Syncing) throw HeldBy(record, record.Run, record.Experiment);
    }

    private static string NextFreeHint(ExperimentRecord record) => (GridNames.ExperimentIndex(record.Experiment) + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private GridException HeldBy(ExperimentRecord? record, string run, string experiment)
    {
        var id = GridNames.ExperimentId(run, experiment);
        var age = record?.Heartbeat is { } beat ? $", last heartbeat {Math.Max(0, (Clock.GetUtcNow() - beat).TotalSeconds):0} s ago" : "";
        return new GridException(GridErrorKind.Busy, "ExperimentAlreadyRunning",
            $"{id} is already {record?.Status.ToString() ?? "being created"} under another writer ({record?.Agent ?? "unnamed"}{age}); nothing was run or changed. " +
            $"Wait for it to end, or stop it with 'Stop-GridRun {id}'. A writer that died is taken over once its heartbeat is older than {LostAfter.TotalSeconds:0} s.",
            id);
    }

    private GridException Removed(string run, string experiment) =>
        new(GridErrorKind.NotFound, "ExperimentRemoved",
            $"{GridNames.ExperimentId(run, experiment)} is not in store '{Location}': it was removed before it started, so nothing was run or written.",
            GridNames.ExperimentId(run, experiment));

    /// <summary>
    /// Ends a queued experiment as Stopped before any agent starts it, by claiming its record; an
    /// agent that starts later finds it ended (or, once removed, gone) and runs nothing. False when an
    /// agent took it first: it is running then, and stops on its stop request.
    /// </summary>
    public Task<bool> StopQueuedAsync(string run, string experiment, CancellationToken ct) =>
        EndQueuedAsync(run, experiment, GridStatus.Stopped, null, null, ct);

    /// <summary>
    /// Ends a queued experiment that no agent will start (its cluster task ended first) with
    /// <paramref name="status"/> and <paramref name="reason"/>, as <see cref="StopQueuedAsync"/> does:
    /// by claiming it, so an agent starting at that moment either wins (and runs it) or runs nothing.
    /// False when it was not queued any more.
    /// </summary>
    public async Task<bool> EndQueuedAsync(string run, string experiment, GridStatus status, string? reason, int? exitCode, CancellationToken ct)
    {
        if (!status.IsFinished() || status == GridStatus.Lost) throw new ArgumentOutOfRangeException(nameof(status), status, "A queued experiment ends Stopped, Failed or Succeeded.");
        try
        {
            var now = Clock.GetUtcNow();
            await ClaimExperimentAsync(run, experiment, r =>
            {
                r!.Status = status;
                r.Finished = r.Heartbeat = now;
                r.Reason = reason;
                r.ExitCode = exitCode;
                r.Agent = WriterId.New(status == GridStatus.Stopped ? "stop" : "end");
                return r;
            }, takeQueued: true, mustExist: true, ct).ConfigureAwait(false);
            return true;
        }
        catch (GridException ex) when (ex.Kind is GridErrorKind.Busy or GridErrorKind.AlreadyExists or GridErrorKind.NotFound)
        {
            return false; // an agent holds it, it has ended, or it is gone: not queued any more
        }
    }
}
