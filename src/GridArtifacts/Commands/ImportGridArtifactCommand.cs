using GridArtifacts.Core.Stores;
using System.Collections;
using System.Collections.Concurrent;
using System.Globalization;
using System.Management.Automation;
using GridArtifacts.Core;
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

    [Parameter]
    [ValidateRange(1, 256)]
    public int ThrottleLimit { get; set; } = 8;

    protected override void ProcessRecord()
    {
        var source = ResolvePath(Path);
        var files = new List<(string Rel, string Full)>();
        if (File.Exists(source))
        {
            files.Add((System.IO.Path.GetFileName(source), source));
        }
        else if (Directory.Exists(source))
        {
            foreach (var f in Directory.EnumerateFiles(source, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
            {
                files.Add((System.IO.Path.GetRelativePath(source, f).Replace('\\', '/'), f));
            }
        }
        else
        {
            WriteGridError(new GridException(GridErrorKind.NotFound, "SourceNotFound", $"'{source}' is neither a file nor a folder.", source));
            return;
        }

        string run, experiment;
        try
        {
            run = GridNames.CheckRunName(Run ?? GridNames.NewRunName());
            experiment = GridNames.CheckExperimentName(Experiment);
        }
        catch (GridException ex)
        {
            WriteGridError(ex);
            return;
        }
        var id = GridNames.ExperimentId(run, experiment);
        if (!ShouldProcess(id, $"Store {files.Count} file(s) from '{source}'")) return;

        var catalog = OpenCatalog();
        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        if (Parameter is not null)
        {
            foreach (DictionaryEntry e in Parameter)
            {
                parameters[Convert.ToString(e.Key, CultureInfo.InvariantCulture)!] = Convert.ToString(e.Value, CultureInfo.InvariantCulture) ?? "";
            }
        }
        long done = 0;
        RunAndDrain(async (post, ct) =>
        {
            var now = catalog.Clock.GetUtcNow();
            try
            {
                await catalog.ReadRunRecordAsync(run, ct).ConfigureAwait(false);
            }
            catch (GridException ex) when (ex.Kind == GridErrorKind.NotFound)
            {
                await catalog.WriteRunRecordAsync(new RunRecord { Name = run, Created = now, Command = Command, Parameters = parameters }, ct).ConfigureAwait(false);
            }
            var manifest = await catalog.ReadManifestAsync(run, experiment, ct).ConfigureAwait(false)
                ?? new ManifestRecord { Run = run, Experiment = experiment };
            var entries = new ConcurrentDictionary<string, ManifestEntry>(manifest.Artifacts.ToDictionary(a => a.Path, StringComparer.Ordinal), StringComparer.Ordinal);
            await Parallel.ForEachAsync(files, new ParallelOptions { MaxDegreeOfParallelism = ThrottleLimit, CancellationToken = ct }, async (f, c) =>
            {
                try
                {
                    var entry = await catalog.PutArtifactFileAsync(run, experiment, f.Rel, f.Full, c).ConfigureAwait(false);
                    entries[entry.Path] = entry;
                }
                catch (GridException ex)
                {
                    post(ex);
                }
                Interlocked.Increment(ref done);
            }).ConfigureAwait(false);
            manifest.Artifacts = entries.Values.ToList();
            manifest.Updated = catalog.Clock.GetUtcNow();
            await catalog.WriteManifestAsync(manifest, ct).ConfigureAwait(false);
            if (await catalog.Store.TryReadAllBytesAsync(Core.Stores.StoreLayout.ExperimentRecordKey(run, experiment), ct).ConfigureAwait(false) is null)
            {
                await catalog.WriteExperimentRecordAsync(new ExperimentRecord
                {
                    Run = run, Experiment = experiment, Status = GridStatus.Succeeded, ExitCode = 0,
                    Created = now, Started = now, Finished = catalog.Clock.GetUtcNow(), Parameters = parameters,
                }, ct).ConfigureAwait(false);
            }
            post(await catalog.GetExperimentAsync(run, experiment, ct).ConfigureAwait(false));
        },
        () => new ProgressRecord(2, $"Importing into {id}", $"{Interlocked.Read(ref done)} of {files.Count} files")
        {
            PercentComplete = (int)(Interlocked.Read(ref done) * 100 / Math.Max(1, files.Count)),
        });
    }
}
