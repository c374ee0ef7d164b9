using System.Management.Automation;
using GridArtifacts.Core;
using GridArtifacts.Model;
using GridArtifacts.Core.Stores;

namespace GridArtifacts.Commands;

/// <summary>Saves the store that later sessions use (in the user's config folder), or forgets it with -Default.</summary>
[Cmdlet(VerbsCommon.Set, "GridStore", SupportsShouldProcess = true, DefaultParameterSetName = LocationSet)]
[OutputType(typeof(GridStoreInfo))]
public sealed class SetGridStoreCommand : GridCmdlet
{
    private const string LocationSet = "Location";
    private const string DefaultSet = "Default";

    /// <summary>A folder (relative paths are taken from the current location) or s3://bucket/prefix.</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = LocationSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Location { get; set; } = "";

    /// <summary>Forgets the saved store: calls fall back to $env:GRID_STORE or ~/.grid/store.</summary>
    [Parameter(Mandatory = true, ParameterSetName = DefaultSet)]
    public SwitchParameter Default { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    /// <summary>Saves an S3 store that could not be used (a bucket not made yet, credentials set up later), with a warning.</summary>
    [Parameter(ParameterSetName = LocationSet)]
    public SwitchParameter Force { get; set; }

    protected override void ProcessRecord()
    {
        if (!Default) CheckStoreLocation(Location);
        string? location = Default ? null : StoreSettings.IsS3(Location) ? Location.TrimEnd('/') : ResolvePath(Location);
        if (!ShouldProcess(StoreSettings.ConfigFile, location is null ? "Forget the saved store" : $"Save store '{location}'")) return;
        if (location is not null && StoreSettings.IsS3(location) && Try(location) is { } problem)
        {
            if (!Force)
            {
                ThrowTerminatingError(ToErrorRecord(new GridException(problem.Kind, problem.ErrorId,
                    problem.Message + " Nothing was saved: fix that and run Set-GridStore again, or add -Force to save the store without it.", location, problem)));
            }
            WriteWarning($"The store could not be used, and is saved anyway (-Force): {problem.Message}");
        }
        try
        {
            StoreSettings.SaveLocation(location);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            ThrowTerminatingError(ToErrorRecord(new GridException(GridErrorKind.WriteFailed, "ConfigWriteFailed", ex.Message, StoreSettings.ConfigFile, ex)));
        }
        var env = Environment.GetEnvironmentVariable(StoreSettings.StoreVariable);
        if (!string.IsNullOrWhiteSpace(env))
        {
            WriteWarning($"$env:{StoreSettings.StoreVariable} is set to '{env}' and takes precedence over the saved store in this session.");
        }
        if (PassThru) WriteObject(StoreSettings.Describe(location ?? StoreSettings.DefaultLocation, location is null ? GridStoreSource.Default : GridStoreSource.Config));
    }

    /// <summary>
    /// One listing request of the store's top level: what every later call needs (a region, credentials,
    /// an endpoint that answers, the bucket) is tried once here. Null when it answered.
    /// </summary>
    private GridException? Try(string location)
    {
        GridException? problem = null;
        RunAndDrain(async (post, ct) =>
        {
            try
            {
                await foreach (var _ in Catalogs.Open(location).Store.ListAsync("", recursive: false, ct).ConfigureAwait(false)) break;
            }
            catch (GridException ex)
            {
                problem = ex;
            }
        });
        return problem;
    }
}
