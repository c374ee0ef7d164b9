using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using GridArtifacts.Core.Metrics;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Sharing;

/// <summary>The page's JSON API: the store, runs, experiments, artifact lists, metrics curves and new links.</summary>
public sealed partial class ArtifactServer
{
    /// <summary>Points per metric the chart gets: more than its 640 units of width can show.</summary>
    public const int ChartPoints = 2000;

    private Task ServeStoreAsync(HttpListenerContext ctx, CancellationToken cancel) =>
        WriteJsonAsync(ctx.Response, new StoreAnswer(Store, _catalog.Store is ILocalFolder ? "FileSystem" : "S3"), ApiJson.Default.StoreAnswer);

    private async Task ServeRunsAsync(HttpListenerContext ctx, CancellationToken cancel) =>
        await WriteBytesAsync(ctx.Response, "application/json; charset=utf-8", await ListRunsAsync(ctx.Request.QueryString["fresh"] == "1", cancel).ConfigureAwait(false)).ConfigureAwait(false);

    /// <summary>The artifact a request names, or null when any of the three names is not one the store can hold.</summary>
    private static (string Run, string Experiment, string Path)? ArtifactFromQuery(string? run, string? experiment, string? path) =>
        run is not null && experiment is not null && path is not null
        && GridNames.IsValidRunName(run) && GridNames.IsValidExperimentName(experiment) && GridNames.ArtifactPathProblem(path) is null
            ? (run, experiment, path)
            : null;


    // One listing gives every run of schema 2 (its index keys). Runs written by 0.1.0 are read
    // record by record, so the page keeps those it has seen finished (they do not change; only
    // removal, which the listing shows). ?fresh=1 (the Refresh button) reads them all again.
    private readonly ConcurrentDictionary<string, GridRun> _finishedRuns = new(StringComparer.Ordinal);

    /// <summary>
    /// The run list as JSON, newest first, written field by field (a store of 100,000 runs is 100,000
    /// objects: no reflection per object).
    /// </summary>
    private async Task<byte[]> ListRunsAsync(bool fresh, CancellationToken cancel)
    {
        if (fresh) _finishedRuns.Clear();
        var read = await _catalog.Runs.ListRunsAsync(cancel, _finishedRuns).ConfigureAwait(false);
        // Lost can still come back (a late heartbeat), and a run without experiments is still being written.
        foreach (var r in read.Items.Where(r => r.Status is GridStatus.Succeeded or GridStatus.Failed or GridStatus.Stopped && r.ExperimentCount > 0)) _finishedRuns[r.Name] = r;
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256 + read.Items.Count * 192);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartArray("runs");
            foreach (var r in read.Items.OrderByDescending(r => r.Created))
            {
                w.WriteStartObject();
                w.WriteString("name", r.Name);
                w.WriteString("status", r.Status.ToString());
                w.WriteBoolean("active", r.Status.IsActive());
                w.WriteString("created", r.Created);
                if (r.Finished is { } finished) w.WriteString("finished", finished);
                else w.WriteNull("finished");
                w.WriteNumber("experiments", r.ExperimentCount);
                w.WriteBoolean("protected", r.Protected);
                w.WriteNumber("bytes", r.ArtifactBytes);
                w.WriteStartArray("tags");
                foreach (var t in r.Tags) w.WriteStringValue(t);
                w.WriteEndArray();
                if (r.Command is { } command) w.WriteString("command", command);
                else w.WriteNull("command");
                if (r.JobId is { } job)
                {
                    // A cluster run: its scheduler's job (and the cluster, where the scheduler names one).
                    w.WriteString("scheduler", r.Scheduler.ToString());
                    w.WriteString("job", job);
                    if (r.Cluster is { } cluster) w.WriteString("cluster", cluster);
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("errors");
            foreach (var e in read.Errors) w.WriteStringValue(e.Message);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private async Task ServeExperimentsAsync(HttpListenerContext ctx, CancellationToken cancel)
    {
        var run = ctx.Request.QueryString["run"];
        if (run is null || !GridNames.IsValidRunName(run)) { ctx.Response.StatusCode = 400; return; }
        await WithStoreErrorsAsync(ctx, async () =>
        {
            var result = await _catalog.Runs.GetExperimentsAsync(run, cancel).ConfigureAwait(false);
            if (result.Items.Count == 0) await _catalog.Runs.ReadRunRecordAsync(run, cancel).ConfigureAwait(false);
            return new ExperimentsAnswer(result.Items.Select(ExperimentRow.Of), result.Errors.Select(e => e.Message));
        }, ApiJson.Default.ExperimentsAnswer).ConfigureAwait(false);
    }

    private async Task ServeArtifactListAsync(HttpListenerContext ctx, CancellationToken cancel)
    {
        var run = ctx.Request.QueryString["run"];
        var experiment = ctx.Request.QueryString["exp"];
        if (run is null || experiment is null || !GridNames.IsValidRunName(run) || !GridNames.IsValidExperimentName(experiment)) { ctx.Response.StatusCode = 400; return; }
        await WithStoreErrorsAsync(ctx, async () =>
        {
            var result = await _catalog.Artifacts.GetArtifactsAsync(run, experiment, cancel).ConfigureAwait(false);
            return new ArtifactsAnswer(
                result.Items.Select(a => new ArtifactRow(a.Path, a.Size, a.LastModified, a.Sha256, ArtifactKinds.Of(a.Path))),
                result.Errors.Select(e => e.Message));
        }, ApiJson.Default.ArtifactsAnswer).ConfigureAwait(false);
    }

    /// <summary>
    /// An experiment's metrics.csv as curves for the chart: the one its record names, else (records
    /// older than metrics, or metrics.json only) the newest metrics.csv among its artifacts. Only
    /// numbers leave the server; column names leave as JSON strings, which escape &lt; and &gt;.
    /// </summary>
    private async Task ServeMetricsAsync(HttpListenerContext ctx, CancellationToken cancel)
    {
        var run = ctx.Request.QueryString["run"];
        var experiment = ctx.Request.QueryString["exp"];
        if (run is null || experiment is null || !GridNames.IsValidRunName(run) || !GridNames.IsValidExperimentName(experiment)) { ctx.Response.StatusCode = 400; return; }
        await WithStoreErrorsAsync(ctx, async () =>
        {
            var record = await _catalog.Runs.ReadExperimentRecordAsync(run, experiment, cancel).ConfigureAwait(false);
            // The recorded path is the store's word, not the page's: only an artifact path of this experiment is read.
            var source = record?.Metrics?.Source is { } recorded && MetricsReader.IsCsvCandidate(recorded) && GridNames.ArtifactPathProblem(recorded) is null ? recorded : null;
            if (source is null)
            {
                // Also says which of run and experiment is unknown when neither has anything stored.
                var artifacts = await _catalog.Artifacts.GetArtifactsAsync(run, experiment, cancel).ConfigureAwait(false);
                source = MetricsReader.ChooseSource(artifacts.Items.Where(a => MetricsReader.IsCsvCandidate(a.Path)).Select(a => (a.Path, a.LastModified)));
            }
            var read = source is null ? NoSeries : await ReadSeriesAsync(StoreLayout.ArtifactKey(run, experiment, source), cancel).ConfigureAwait(false);
            return new MetricsAnswer(source, read.X, read.Columns, read.Points, read.Rows, read.Downsampled, read.Problem);
        }, ApiJson.Default.MetricsAnswer).ConfigureAwait(false);
    }

    private static readonly MetricsSeries NoSeries = new(null, Array.Empty<string>(), new Dictionary<string, double[][]>(), 0, false, null);

    private async Task<MetricsSeries> ReadSeriesAsync(string key, CancellationToken cancel)
    {
        var stream = await _catalog.Store.OpenReadAsync(key, cancel).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            // The reader stops past MetricsReader.MaxCsvBytes (64 MiB). It reads synchronously: off the request's thread.
            return await Task.Run(() => MetricsReader.ReadSeries(stream, ChartPoints), cancel).ConfigureAwait(false);
        }
    }

    private async Task ServeNewLinkAsync(HttpListenerContext ctx, CancellationToken cancel)
    {
        var q = ctx.Request.QueryString;
        if (ArtifactFromQuery(q["run"], q["exp"], q["path"]) is not { } a) { ctx.Response.StatusCode = 400; return; }
        await WithStoreErrorsAsync(ctx, async () =>
        {
            var warnings = new List<string>();
            var (url, expires) = await ArtifactLinks.CreateAsync(_catalog.Store, a.Run, a.Experiment, a.Path, ArtifactLinks.DefaultLifetime, warnings.Add).ConfigureAwait(false);
            return new LinkAnswer(url, expires, warnings);
        }, ApiJson.Default.LinkAnswer).ConfigureAwait(false);
    }

    /// <summary>The JSON a handler makes; a store's error as <c>{ error, errorId }</c> with its status (and in the log, by id).</summary>
    private async Task WithStoreErrorsAsync<T>(HttpListenerContext ctx, Func<Task<T>> body, JsonTypeInfo<T> json)
    {
        var res = ctx.Response;
        T result;
        try { result = await body().ConfigureAwait(false); }
        catch (GridException ex)
        {
            LogError(ctx, ex);
            res.StatusCode = ex.Kind switch
            {
                GridErrorKind.NotFound => 404,
                GridErrorKind.InvalidName or GridErrorKind.InvalidArgument => 400,
                GridErrorKind.AccessDenied => 403,
                _ => 502,
            };
            await WriteJsonAsync(res, new ErrorAnswer(ex.Message, ex.ErrorId), ApiJson.Default.ErrorAnswer).ConfigureAwait(false);
            return;
        }
        await WriteJsonAsync(res, result, json).ConfigureAwait(false);
    }
}
