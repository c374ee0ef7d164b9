using System.Management.Automation;
using GridArtifacts.Core.Sharing;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Commands;

/// <summary>
/// Makes expiring links to artifacts, 24 hours by default: SigV4 presigned GETs for an S3 store;
/// for a folder store, HMAC-signed links served by Start-GridArtifactServer. Asking again gives a
/// fresh link. The URL is only ever written as the output asked for.
/// </summary>
[Cmdlet(VerbsCommon.New, "GridArtifactLink", DefaultParameterSetName = InputObjectSet)]
[OutputType(typeof(GridArtifactLink))]
public sealed class NewGridArtifactLinkCommand : GridStoreCmdlet
{
    private const string InputObjectSet = "InputObject";
    private const string NameSet = "Name";

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = InputObjectSet)]
    public GridArtifact[] InputObject { get; set; } = Array.Empty<GridArtifact>();

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = NameSet)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(RunNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Run { get; set; } = Array.Empty<string>();

    [Parameter(ParameterSetName = NameSet)]
    [SupportsWildcards]
    public string[]? Experiment { get; set; }

    [Parameter(Position = 1, ParameterSetName = NameSet)]
    [SupportsWildcards]
    public string[]? Path { get; set; }

    /// <summary>How long the link works; 24 hours by default (at most 7 days on S3).</summary>
    [Parameter]
    public TimeSpan Expiry { get; set; } = TimeSpan.FromHours(24);

    protected override void ProcessRecord()
    {
        if (Expiry <= TimeSpan.Zero || Expiry > TimeSpan.FromDays(365))
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentOutOfRangeException(nameof(Expiry), "-Expiry must be positive and at most 365 days (7 days on S3)."), "InvalidExpiry", ErrorCategory.InvalidArgument, Expiry));
        }
        var artifacts = new List<GridArtifact>();
        if (ParameterSetName == InputObjectSet)
        {
            artifacts.AddRange(InputObject);
        }
        else
        {
            var query = new ArtifactQuery(Run, Experiment, Path, null, null);
            var catalog = OpenCatalog();
            RunAndDrain(async (post, ct) => artifacts.AddRange(await query.ListAsync(catalog, post, ct).ConfigureAwait(false)));
        }
        foreach (var a in artifacts)
        {
            var store = StoreSettings.Open(a.Store).Store;
            var key = StoreLayout.ArtifactKey(a.Run, a.Experiment, a.Path);
            switch (store)
            {
                case S3Store s3:
                    RunAndDrain(async (post, ct) =>
                    {
                        try
                        {
                            var (url, expires) = await s3.PresignGetAsync(key, Expiry, w => post(new WarningMessage(w))).ConfigureAwait(false);
                            post(new GridArtifactLink(a.Run, a.Experiment, a.Path, a.Store, url, expires));
                        }
                        catch (Model.GridException ex) { post(ex); }
                    });
                    break;
                case FileSystemStore fs:
                    var server = LocalLinkServer.For(fs.Location);
                    if (server is null)
                    {
                        WriteError(new ErrorRecord(new InvalidOperationException(
                                $"Links to the folder store '{fs.Location}' are served by this session: run Start-GridArtifactServer -Store '{fs.Location}' first."),
                            "NoLinkServer", ErrorCategory.ResourceUnavailable, a));
                        continue;
                    }
                    var (link, until) = server.Sign(a.Run, a.Experiment, a.Path, Expiry);
                    WriteObject(new GridArtifactLink(a.Run, a.Experiment, a.Path, a.Store, link, until));
                    break;
            }
        }
    }
}

/// <summary>Information about a running link server.</summary>
public sealed class GridArtifactServerInfo
{
    public GridArtifactServerInfo(string store, Uri url) { Store = store; Url = url; }
    public string Store { get; }
    public Uri Url { get; }
}

/// <summary>Serves a folder store's artifact links from this session (127.0.0.1 by default).</summary>
[Cmdlet(VerbsLifecycle.Start, "GridArtifactServer")]
[OutputType(typeof(GridArtifactServerInfo))]
public sealed class StartGridArtifactServerCommand : GridStoreCmdlet
{
    [Parameter]
    [ValidateRange(0, 65535)]
    public int Port { get; set; }

    /// <summary>The address to listen on; 127.0.0.1 keeps links to this machine.</summary>
    [Parameter]
    public string Address { get; set; } = "127.0.0.1";

    protected override void ProcessRecord()
    {
        if (OpenCatalog().Store is not FileSystemStore fs)
        {
            ThrowTerminatingError(new ErrorRecord(new InvalidOperationException("S3 stores need no server: New-GridArtifactLink makes presigned links for them."), "NotAFolderStore", ErrorCategory.InvalidOperation, Store));
            return;
        }
        var server = LocalLinkServer.Start(fs, Address, Port);
        WriteObject(new GridArtifactServerInfo(server.Store, server.BaseUrl));
    }
}

/// <summary>Stops serving a folder store's links; links already given stop working.</summary>
[Cmdlet(VerbsLifecycle.Stop, "GridArtifactServer")]
public sealed class StopGridArtifactServerCommand : GridStoreCmdlet
{
    protected override void ProcessRecord()
    {
        var location = ResolveStore().Location;
        if (!LocalLinkServer.Stop(location))
        {
            WriteError(new ErrorRecord(new InvalidOperationException($"No link server is running for '{location}' in this session."), "NoLinkServer", ErrorCategory.ObjectNotFound, location));
        }
    }
}
