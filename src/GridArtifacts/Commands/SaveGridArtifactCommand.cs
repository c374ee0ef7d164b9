using System.Diagnostics;
using System.Management.Automation;
using GridArtifacts.Core;
using GridArtifacts.Model;
using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;

namespace GridArtifacts.Commands;

/// <summary>
/// Downloads artifacts to <c>&lt;Destination&gt;/&lt;run&gt;/&lt;exp&gt;/&lt;path&gt;</c>, verified against their
/// SHA-256. Identical files already there are skipped; -Force downloads them again.
/// </summary>
[Cmdlet(VerbsData.Save, "GridArtifact", SupportsShouldProcess = true, DefaultParameterSetName = InputObjectSet)]
[OutputType(typeof(GridSaveResult))]
public sealed class SaveGridArtifactCommand : GridArtifactQueryCmdlet
{
    private const string InputObjectSet = "InputObject";

    /// <summary>Artifacts from Get-GridArtifact.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = InputObjectSet)]
    public GridArtifact[] InputObject { get; set; } = Array.Empty<GridArtifact>();

    /// <summary>Relative artifact paths; wildcards are supported and '*' crosses folders.</summary>
    [Parameter(ParameterSetName = NameSet)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public override string[]? Path { get; set; }

    /// <summary>The folder to save into, relative to the current location; ./grid_artifacts by default.</summary>
    [Parameter(Position = 1)]
    [Alias("DownloadDir")]
    [ValidateNotNullOrEmpty]
    public string Destination { get; set; } = "grid_artifacts";

    /// <summary>Downloads even files that are already there and identical.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Emits one result per artifact: downloaded, overwritten or skipped.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    /// <summary>
    /// How many artifacts this call moves at once. 32, as many as the process's requests in flight:
    /// measured best of 8, 16 and 32 for small files (docs/transfer-engine.md).
    /// </summary>
    [Parameter]
    [ValidateRange(1, 256)]
    public int ThrottleLimit { get; set; } = TransferOptions.DefaultFilesInFlight;

    private readonly List<GridArtifact> _artifacts = new();
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);

    protected override void ProcessRecord()
    {
        if (ParameterSetName == InputObjectSet)
        {
            foreach (var a in InputObject) Add(a);
            return;
        }
        var query = Query();
        var catalog = OpenCatalog();
        var found = new List<GridArtifact>();
        RunAndDrain(async (post, ct) => found.AddRange(await query.ListAsync(catalog, post, ct).ConfigureAwait(false)));
        foreach (var a in found) Add(a);
    }

    private void Add(GridArtifact a)
    {
        if (_seen.Add($"{a.Store}\n{a.Run}\n{a.Experiment}\n{a.Path}")) _artifacts.Add(a);
    }

    protected override void EndProcessing()
    {
        var plan = SavePlan.For(ResolvePath(Destination), _artifacts);
        foreach (var refused in plan.Refused) WriteGridError(refused);
        var (root, items, bytes) = (plan.Root, plan.Items, plan.Bytes);
        if (items.Count == 0)
        {
            base.EndProcessing();
            return;
        }
        if (MyInvocation.BoundParameters.ContainsKey("WhatIf"))
        {
            // Say what would move, without moving it: files and bytes to fetch, files already up to date.
            var preview = plan.PreviewAsync(Force, Catalogs.Open, CancelToken).GetAwaiter().GetResult();
            ShouldProcess(root, $"Save {preview.Fetch} artifact(s), {SizeText.Format(preview.FetchBytes)} to fetch; {preview.UpToDate} already up to date");
            base.EndProcessing();
            return;
        }
        if (!ShouldProcess(root, $"Save {items.Count} artifact(s), {SizeText.Format(bytes)}"))
        {
            base.EndProcessing();
            return;
        }
        try { plan.CheckDestination(); }
        catch (GridException ex) { ThrowTerminatingError(ToErrorRecord(ex)); }

        var progress = new TransferProgress(items.Count, bytes);
        var clock = Stopwatch.StartNew();
        RunAndDrain(
            (post, ct) => plan.DownloadAsync(Catalogs.Open, Force, ThrottleLimit, progress, r => { if (PassThru) post(r); }, post, ct),
            () => ProgressFor(progress, clock.Elapsed));
        var saved = progress.FilesDone - progress.Skipped - progress.Failed;
        var summary = $"Saved {saved}, skipped {progress.Skipped} (already up to date), failed {progress.Failed} of {items.Count} artifact(s); " +
                      $"{SizeText.Format(bytes)} in {clock.Elapsed.TotalSeconds:F1} s to '{root}'.";
        WriteVerbose(summary);
        WriteInformation(new InformationRecord(summary, "Save-GridArtifact") { Tags = { "Summary" } });
        base.EndProcessing();
    }

    private static ProgressRecord ProgressFor(TransferProgress p, TimeSpan elapsed)
    {
        var done = p.BytesDone;
        var rate = elapsed.TotalSeconds > 0 ? done / elapsed.TotalSeconds : 0;
        var record = new ProgressRecord(1, "Saving artifacts",
            $"{p.FilesDone} of {p.FilesTotal} files, {SizeText.Format(done)} of {SizeText.Format(p.BytesTotal)} at {SizeText.Format((long)rate)}/s")
        {
            PercentComplete = p.BytesTotal > 0 ? (int)Math.Min(100, done * 100 / p.BytesTotal) : (int)(p.FilesDone * 100 / Math.Max(1, p.FilesTotal)),
        };
        if (rate > 0 && p.BytesTotal > done) record.SecondsRemaining = (int)Math.Min(int.MaxValue, (p.BytesTotal - done) / rate);
        return record;
    }
}
