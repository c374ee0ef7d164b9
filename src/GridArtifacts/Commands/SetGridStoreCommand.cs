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

    protected override void ProcessRecord()
    {
        if (!Default) CheckStoreLocation(Location);
        string? location = Default ? null : StoreSettings.IsS3(Location) ? Location.TrimEnd('/') : ResolvePath(Location);
        if (!ShouldProcess(StoreSettings.ConfigFile, location is null ? "Forget the saved store" : $"Save store '{location}'")) return;
        try
        {
            StoreSettings.SaveLocation(location);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            ThrowTerminatingError(new ErrorRecord(ex, "ConfigWriteFailed", ErrorCategory.WriteError, StoreSettings.ConfigFile));
        }
        var env = Environment.GetEnvironmentVariable(StoreSettings.StoreVariable);
        if (!string.IsNullOrWhiteSpace(env))
        {
            WriteWarning($"$env:{StoreSettings.StoreVariable} is set to '{env}' and takes precedence over the saved store in this session.");
        }
        if (PassThru) WriteObject(StoreSettings.Describe(location ?? StoreSettings.DefaultLocation, location is null ? GridStoreSource.Default : GridStoreSource.Config));
    }
}
