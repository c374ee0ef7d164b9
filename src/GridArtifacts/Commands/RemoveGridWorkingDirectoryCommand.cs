using System.Management.Automation;
using GridArtifacts.Core;
using GridArtifacts.Core.Capture;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Commands;

/// <summary>
/// Removes the working folders Start-GridRun left under a work root (~/.grid/work by default): those
/// kept with -KeepWorkingDirectory, those kept because a file in them did not reach the store (only
/// with -Force), and those releases before 0.4.2 left behind. A folder is removed only once every
/// experiment of its run has ended (its plan.json names the run and its store, which is asked); one
/// whose store cannot be asked is left, with a warning. Links inside are removed as links.
/// </summary>
[Cmdlet(VerbsCommon.Remove, "GridWorkingDirectory", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(void))]
public sealed class RemoveGridWorkingDirectoryCommand : GridCmdlet
{
    /// <summary>Only the folders of these runs (wildcards); every run's by default.</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Name")]
    [ArgumentCompleter(typeof(RunNameCompleter))]
    [ValidateNotNullOrEmpty]
    [SupportsWildcards]
    public string[]? Run { get; set; }

    /// <summary>The folder Start-GridRun made them in (its -WorkingRoot); ~/.grid/work by default.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? WorkingRoot { get; set; }

    /// <summary>Also removes folders holding files that are not in the store (the store refused them, or they cannot be stored).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    private readonly Dictionary<string, GridCatalog?> _catalogs = new(StringComparer.Ordinal);

    private readonly List<WildcardPattern> _patterns = new();
    private bool _everyRun;

    /// <summary>Gathers the runs named (piped runs included); the root is read once, at the end.</summary>
    protected override void ProcessRecord()
    {
        if (Run is null) _everyRun = true;
        else _patterns.AddRange(Run.Select(r => new WildcardPattern(r, WildcardOptions.IgnoreCase)));
    }

    protected override void EndProcessing()
    {
        try { RemoveFolders(); }
        finally { base.EndProcessing(); }
    }

    private void RemoveFolders()
    {
        var root = ResolvePath(WorkingRoot ?? ModuleFolders.DefaultWorkRoot);
        if (!Directory.Exists(root))
        {
            WriteVerbose($"'{root}' does not exist: there is nothing to remove.");
            return;
        }
        foreach (var folder in new DirectoryInfo(root).EnumerateDirectories().OrderBy(d => d.Name, StringComparer.Ordinal))
        {
            if (WorkingFolders.RunOf(folder.Name) is not { } run || !(_everyRun || _patterns.Any(p => p.IsMatch(run)))) continue;
            if ((folder.Attributes & FileAttributes.ReparsePoint) != 0) continue;
            Consider(folder.FullName);
        }
    }

    /// <summary>Removes one run's folder when its run has ended (and, without -Force, every file in it is stored).</summary>
    private void Consider(string folder)
    {
        var plan = WorkingFolders.ReadPlan(folder);
        if (plan is null)
        {
            WriteVerbose($"Left '{folder}': it has no readable {WorkingFolders.PlanFile}, so it is not a folder Start-GridRun made.");
            return;
        }
        var catalog = CatalogOf(plan.Value.Store);
        if (catalog is null)
        {
            WriteWarning($"Left '{folder}': its store '{plan.Value.Store}' could not be opened, so whether run {plan.Value.Run} has ended is not known.");
            return;
        }
        IReadOnlyList<GridExperiment>? experiments = null;
        string? problem = null;
        var storeEmpty = false;
        RunAndDrain(async (post, ct) =>
        {
            try
            {
                var read = await catalog.Runs.GetExperimentsAsync(plan.Value.Run, ct).ConfigureAwait(false);
                // An experiment whose record cannot be read may be running in the folder: nothing is judged without it.
                if (read.Errors.Count > 0) problem = string.Join(" ", read.Errors.Select(e => e.Message));
                else experiments = read.Items;
            }
            catch (GridException ex) when (ex.Kind == GridErrorKind.NotFound && Equals(ex.Target, plan.Value.Run))
            {
                // Removed from the store, if the store is there at all: one that holds no run (a folder
                // on a disk not mounted, a bucket of another endpoint) says nothing of this run.
                if (await catalog.Runs.HoldsAnyRunAsync(ct).ConfigureAwait(false)) experiments = Array.Empty<GridExperiment>();
                else storeEmpty = true;
            }
            catch (GridException ex) when (ex.Kind == GridErrorKind.NotFound) { storeEmpty = true; problem = ex.Message; } // no such bucket
            catch (GridException ex) { problem = ex.Message; }
        });
        if (storeEmpty)
        {
            if (!Force)
            {
                WriteWarning($"Left '{folder}': its store '{plan.Value.Store}' holds no runs at all ({problem ?? "nothing is there"}), so whether run {plan.Value.Run} has ended, " +
                    "and whether its files are stored, is not known (a folder not mounted, or another store?). -Force removes it anyway.");
                return;
            }
            experiments = Array.Empty<GridExperiment>();
        }
        if (experiments is null)
        {
            WriteWarning($"Left '{folder}': run {plan.Value.Run} could not be read from '{plan.Value.Store}': {problem}");
            return;
        }
        if (experiments.FirstOrDefault(e => e.Status.IsActive()) is { } active)
        {
            WriteWarning($"Left '{folder}': {active.Id} is {active.Status}; its folder is removed once it has ended.");
            return;
        }
        // Not all in the store: what the final sync left pending or could not store; a folder its agent
        // kept (a skipped folder, files there before the start; its record still names it) unless the
        // run asked to keep every folder; and a Lost experiment, whose agent ended before its final sync.
        var unstored = experiments.Where(e => e.Sync is { } s && (s.FilesPending > 0 || s.Unstorable.Count > 0)
            || e.Status == GridStatus.Lost
            || (!plan.Value.Keep && e.WorkingDirectory is not null)).ToList();
        if (unstored.Count > 0 && !Force)
        {
            WriteWarning($"Left '{folder}': not every file of {string.Join(", ", unstored.Select(e => e.Id))} is in the store (its agent kept the folder and said why, or ended before its final sync; see Sync on Get-GridExperiment). -Force removes it anyway.");
            return;
        }
        if (!ShouldProcess(folder, $"Remove the working folder of run {plan.Value.Run}")) return;
        if (WorkingFolders.Remove(folder) is { } why)
            WriteError(ToErrorRecord(new GridException(GridErrorKind.WriteFailed, "WorkingFolderNotRemoved", $"'{folder}' was not removed (in part or at all): {why}", folder)));
        else
            WriteVerbose($"Removed '{folder}'.");
    }

    private GridCatalog? CatalogOf(string location)
    {
        if (_catalogs.TryGetValue(location, out var known)) return known;
        GridCatalog? catalog = null;
        try { catalog = Catalogs.Open(location); }
        catch (GridException ex) { WriteVerbose($"The store '{location}' could not be opened: {ex.Message}"); }
        return _catalogs[location] = catalog;
    }
}
