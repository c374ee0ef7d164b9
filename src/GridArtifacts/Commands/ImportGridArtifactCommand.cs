using System.Collections;
using System.Management.Automation;
using GridArtifacts.Core.Capture;
using GridArtifacts.Model;

namespace GridArtifacts.Commands;

/// <summary>
/// Stores the files of a local folder as the artifacts of one experiment, creating the run and the
/// experiment when they are new. For outputs made outside a captured run, and for sample data.
/// </summary>
[Cmdlet(VerbsData.Import, "GridArtifact", SupportsShouldProcess = true)]
[OutputType(typeof(GridExperiment))]
public sealed class ImportGridArtifactCommand : GridStoreCmdlet
{
    /// <summary>A folder (every file under it, with paths relative to it) or one file.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    /// <summary>The run to add to; a new name such as adorable-mouse-123 when omitted.</summary>
    [Parameter(Position = 1)]
    [ArgumentCompleter(typeof(RunNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string? Run { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(ExperimentNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Experiment { get; set; } = "exp0";

    /// <summary>Parameters recorded with a new run and experiment.</summary>
    [Parameter]
    public Hashtable? Parameter { get; set; }

    /// <summary>The command recorded with a new run.</summary>
    [Parameter]
    public string? Command { get; set; }

    /// <summary>Tags on the experiment the files go into.</summary>
    [Parameter]
    [ArgumentCompleter(typeof(TagCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Tag { get; set; }

    [Parameter]
    [ValidateRange(1, 256)]
    public int ThrottleLimit { get; set; } = TransferOptions.DefaultFilesInFlight;

    protected override void ProcessRecord()
    {
        var source = ResolvePath(Path);
        string? run;
        string experiment;
        IReadOnlyList<string> tags;
        try
        {
            run = Run is null ? null : GridNames.CheckRunName(Run);
            experiment = GridNames.CheckExperimentName(Experiment);
            tags = GridNames.CheckTags(Tag);
        }
        catch (GridException ex)
        {
            WriteGridError(ex);
            return;
        }
        var catalog = OpenCatalog();
        List<(string Path, string LocalPath)> files;
        ReadScope? scope;
        try
        {
            // The store's own folder, and the module's working and temporary folders, are never imported.
            files = ArtifactImporter.ListFiles(source, new ModuleFolders(catalog.Store), WriteWarning, out scope);
        }
        catch (GridException ex)
        {
            WriteGridError(ex);
            return;
        }
        var id = GridNames.ExperimentId(run ?? "<new run>", experiment);
        if (!ShouldProcess(id, $"Store {files.Count} file(s) from '{source}'")) return;

        var request = new ImportRequest
        {
            Run = run,
            Experiment = experiment,
            Files = files,
            Parameters = InvokeGridExperimentCommand.ToDictionary(Parameter),
            Command = Command,
            Tags = tags,
            ThrottleLimit = ThrottleLimit,
            Scope = scope,
        };
        var done = 0;
        RunAndDrain(async (post, ct) =>
        {
            // A refusal (the experiment has ended, or is held) is an error for this import; piped imports go on.
            try { post(await new ArtifactImporter(catalog).ImportAsync(request, post, n => Volatile.Write(ref done, n), ct, w => post(new WarningMessage(w))).ConfigureAwait(false)); }
            catch (GridException ex) { post(ex); }
        },
        () => new ProgressRecord(2, $"Importing into {id}", $"{Volatile.Read(ref done)} of {files.Count} files")
        {
            PercentComplete = Volatile.Read(ref done) * 100 / Math.Max(1, files.Count),
        });
    }
}
