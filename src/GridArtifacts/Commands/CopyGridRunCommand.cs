using System.Management.Automation;
using GridArtifacts.Core;
using GridArtifacts.Core.Sharing;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Commands;

/// <summary>
/// Copies runs (records, artifacts, manifests, logs) to another store, verified by SHA-256: promote
/// a laptop's run to the team's bucket, or keep a bucket's run offline. An interrupted copy resumes;
/// the source is never changed.
/// </summary>
[Cmdlet(VerbsCommon.Copy, "GridRun", SupportsShouldProcess = true)]
[OutputType(typeof(GridRun))]
public sealed class CopyGridRunCommand : GridStoreCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(RunNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = Array.Empty<string>();

    /// <summary>The store to copy into: a folder or s3://bucket/prefix.</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string Destination { get; set; } = "";

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        var source = OpenCatalog();
        CheckStoreLocation(Destination);
        var targetLocation = StoreSettings.IsS3(Destination) ? Destination : ResolvePath(Destination);
        if (string.Equals(targetLocation, source.Location, StringComparison.Ordinal))
        {
            ThrowTerminatingError(ToErrorRecord(new GridException(GridErrorKind.InvalidArgument, "SameStore", "The destination is the source store.", Destination)));
        }
        var target = Catalogs.Open(targetLocation);
        var runs = new List<string>();
        RunAndDrain(async (post, ct) => runs.AddRange(await Targets.ResolveRunsAsync(source, Name, post, ct).ConfigureAwait(false)));
        foreach (var run in runs)
        {
            if (!ShouldProcess(run, $"Copy to '{targetLocation}'")) continue;
            var temp = Path.Combine(Path.GetTempPath(), "grid-copy-" + Guid.NewGuid().ToString("N"));
            try
            {
                CopyResult? result = null;
                RunAndDrain(async (post, ct) =>
                {
                    try { result = await new RunCopier(source, target).CopyAsync(run, temp, post, ct).ConfigureAwait(false); }
                    catch (GridException ex) { post(ex); }
                });
                if (result is null) continue;
                var summary = $"Copied {run} to '{targetLocation}': {result.Experiments} experiment(s), {result.Copied} artifact(s) copied ({SizeText.Format(result.Bytes)}), {result.Skipped} already there.";
                WriteVerbose(summary);
                WriteInformation(new InformationRecord(summary, "Copy-GridRun") { Tags = { "Summary" } });
                if (PassThru) WriteObject(target.Runs.GetRunAsync(run, CancelToken).GetAwaiter().GetResult());
            }
            finally
            {
                try { Directory.Delete(temp, recursive: true); } catch (DirectoryNotFoundException) { }
            }
        }
    }
}
