using System.Management.Automation;
using GridArtifacts.Core;
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
    [ArgumentCompleter(typeof(RunOrExperimentCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Run { get; set; } = Array.Empty<string>();

    [Parameter(ParameterSetName = NameSet)]
    [ArgumentCompleter(typeof(ExperimentNameCompleter))]
    [SupportsWildcards]
    public string[]? Experiment { get; set; }

    [Parameter(Position = 1, ParameterSetName = NameSet)]
    [SupportsWildcards]
    public string[]? Path { get; set; }

    /// <summary>How long the link works; 24 hours by default, at most 7 days on either store.</summary>
    [Parameter]
    public TimeSpan Expiry { get; set; } = TimeSpan.FromHours(24);

    protected override void ProcessRecord()
    {
        // Before anything is listed or signed, and the same on both stores.
        try { ArtifactLinks.CheckLifetime(Expiry); }
        catch (Model.GridException ex) { ThrowTerminatingError(ToErrorRecord(ex)); }
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
            var store = Catalogs.Open(a.Store).Store;
            RunAndDrain(async (post, ct) =>
            {
                try
                {
                    var (url, expires) = await ArtifactLinks.CreateAsync(store, a.Run, a.Experiment, a.Path, Expiry, w => post(new WarningMessage(w))).ConfigureAwait(false);
                    post(new GridArtifactLink(a.Run, a.Experiment, a.Path, a.Store, url, expires));
                }
                catch (Model.GridException ex) { post(ex); }
            });
        }
    }
}

/// <summary>A store's artifact server in this session: the page (with its access token) and the links.</summary>
public sealed class GridArtifactServerInfo
{
    public GridArtifactServerInfo(string store, Uri url, Uri pageUrl)
    {
        Store = store;
        Url = url;
        PageUrl = pageUrl;
    }

    public string Store { get; }
    /// <summary>The server's address; a folder store's links start with it.</summary>
    public Uri Url { get; }
    /// <summary>The artifacts page, with the access token that lets its holder browse the store.</summary>
    public Uri PageUrl { get; }
    public override string ToString() => PageUrl.ToString();
}

/// <summary>
/// Starts this session's server for a store (127.0.0.1 by default): the artifacts page at / for any
/// store, and a folder store's expiring links. Starting it again returns the running one.
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "GridArtifactServer")]
[OutputType(typeof(GridArtifactServerInfo))]
public sealed class StartGridArtifactServerCommand : GridStoreCmdlet
{
    [Parameter]
    [ValidateRange(0, 65535)]
    public int Port { get; set; }

    /// <summary>The address to listen on; 127.0.0.1 keeps the page and links to this machine.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string Address { get; set; } = "127.0.0.1";

    protected override void ProcessRecord() => WriteObject(ArtifactServerStarter.Start(this, OpenCatalog(), Address, Port));
}

/// <summary>Opens the artifacts page in the default browser, starting this session's server for the store if needed.</summary>
[Cmdlet(VerbsCommon.Show, "GridArtifact")]
[OutputType(typeof(GridArtifactServerInfo))]
public sealed class ShowGridArtifactCommand : GridStoreCmdlet
{
    /// <summary>A run (or run-expN) to open the page at.</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(RunOrExperimentCompleter))]
    [ValidateNotNullOrEmpty]
    public string? Run { get; set; }

    /// <summary>Experiments (expN) of the run to select on the page.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(ExperimentNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Experiment { get; set; }

    /// <summary>Only print the page's address.</summary>
    [Parameter]
    public SwitchParameter NoBrowser { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    private bool _shown;

    protected override void ProcessRecord()
    {
        if (_shown) return; // One page for the whole pipeline.
        _shown = true;
        var info = ArtifactServerStarter.Start(this, OpenCatalog(), "127.0.0.1", 0);
        var experiments = Experiment ?? Array.Empty<string>();
        string? run = null;
        if (Run is not null)
        {
            var (runPart, expPart) = GridNames.SplitTarget(Run);
            if (!GridNames.IsValidRunName(runPart))
            {
                ThrowTerminatingError(ToErrorRecord(new GridException(GridErrorKind.InvalidArgument, "InvalidRunName", $"'{Run}' is not a run name or a run-expN id.", Run)));
            }
            run = runPart;
            if (expPart is not null) experiments = experiments.Append(expPart).ToArray();
        }
        var fragment = run is null ? "" : "#run=" + Uri.EscapeDataString(run) + (experiments.Length > 0 ? "&exp=" + Uri.EscapeDataString(string.Join(",", experiments)) : "");
        var page = new Uri(info.PageUrl + fragment);
        // The address with the token goes to this user's own host only, never onto a command line.
        WriteInformation(new HostInformationMessage { Message = $"Artifacts page: {page}" }, new[] { "PSHOST" });
        if (!NoBrowser && !OpenBrowser(info.Store, fragment, out var why))
        {
            WriteWarning($"Could not open a browser ({why}); open the address above.");
        }
        if (PassThru) WriteObject(new GridArtifactServerInfo(info.Store, info.Url, page));
    }

    /// <summary>
    /// Opens the browser on an entry file that only this user can read, holding a one-time code: a
    /// browser's command line is readable by every local user, so the token never goes there.
    /// </summary>
    private static bool OpenBrowser(string store, string fragment, out string? why)
    {
        if (ArtifactServer.For(store) is not { } server) { why = "the server has stopped"; return false; }
        string entry;
        try { entry = server.WriteEntryFile(fragment); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            why = ex.Message;
            return false;
        }
        return BrowserLauncher.TryOpen(new Uri(entry), out why);
    }
}

internal static class ArtifactServerStarter
{
    public static GridArtifactServerInfo Start(GridCmdlet cmdlet, Core.GridCatalog catalog, string address, int port)
    {
        var running = ArtifactServer.For(catalog.Location);
        try
        {
            var server = running ?? ArtifactServer.Start(catalog, address, port);
            if (running is not null && (port != 0 && port != running.Port))
            {
                cmdlet.WriteWarning($"The server for '{catalog.Location}' is already running on port {running.Port}; Stop-GridArtifactServer first to move it.");
            }
            return new GridArtifactServerInfo(server.Store, server.BaseUrl, server.PageUrl);
        }
        catch (Exception ex) when (ex is System.Net.HttpListenerException or System.Net.Sockets.SocketException or FormatException)
        {
            cmdlet.ThrowTerminatingError(GridCmdlet.ToErrorRecord(new GridException(GridErrorKind.ResourceUnavailable, "ServerStartFailed", $"Could not listen on {address}:{port}: {ex.Message}", address, ex)));
            throw; // not reached
        }
    }
}

/// <summary>Stops this session's server for a store; the page and folder-store links given stop working.</summary>
[Cmdlet(VerbsLifecycle.Stop, "GridArtifactServer")]
public sealed class StopGridArtifactServerCommand : GridStoreCmdlet
{
    protected override void ProcessRecord()
    {
        var location = ResolveStore().Location;
        if (ArtifactServer.Stop(location)) return;
        var running = ArtifactServer.RunningStores;
        if (Store is null && running.Count == 1)
        {
            // No store named: the one server that runs is the one meant, whatever the default store is.
            WriteVerbose($"Stopping the one artifact server running in this session, for '{running[0]}'.");
            if (ArtifactServer.Stop(running[0])) return;
        }
        if (Store is null && running.Count > 1)
        {
            WriteError(ToErrorRecord(new GridException(GridErrorKind.InvalidArgument, "AmbiguousLinkServer", $"No artifact server is running for '{location}', and {running.Count} run for other stores: {string.Join(", ", running.Select(r => $"'{r}'"))}. Name the one to stop with -Store.", location)));
            return;
        }
        WriteError(ToErrorRecord(new GridException(GridErrorKind.NotFound, "NoLinkServer", $"No artifact server is running for '{location}' in this session.", location)));
    }
}
