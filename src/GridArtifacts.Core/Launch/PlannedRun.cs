using GridArtifacts.Core.Capture;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Launch;

/// <summary>
/// One experiment of a run's plan, as whatever starts it runs it (<c>grid-agent plan</c>, the
/// module's task script under pwsh): the request the plan makes, and the run folder's removal once
/// the last experiment has ended.
/// </summary>
public static class PlannedRun
{
    /// <summary>
    /// The request for experiment number <paramref name="index"/>: queued (one removed or stopped while
    /// it waited runs nothing and creates nothing), in its own folder, which goes after its final sync
    /// unless the plan keeps folders.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The plan has no such experiment.</exception>
    public static ExperimentRequest Request(RunPlan plan, int index)
    {
        var e = plan.Experiment(index);
        return new ExperimentRequest
        {
            Run = plan.Run,
            Experiment = e.Experiment,
            Command = e.Command,
            WorkingDirectory = e.WorkingDirectory,
            WorkingDirectoryGiven = true,
            RemoveWorkingDirectory = !plan.KeepWorkingDirectory,
            ArtifactRoots = plan.ArtifactPath.Where(p => !string.IsNullOrEmpty(p)).ToArray(),
            Parameters = e.Parameters,
            Queued = true,
        };
    }

    /// <summary>
    /// Removes the run's folder (plan, job script, empty logs) once every experiment of the run has
    /// ended and every experiment folder is gone. A log with something in it keeps it, as does a run
    /// that cannot be read or was removed (its queued experiments still read plan.json);
    /// Remove-GridWorkingDirectory removes it later. Whichever experiment ends last does it; two at
    /// once are harmless. Links in it are removed as links: nothing outside it is read or touched.
    /// </summary>
    /// <returns>Whether the folder was removed.</returns>
    public static async Task<bool> RemoveRunFolderIfEndedAsync(RunPlan plan, string planPath, CancellationToken ct)
    {
        var runFolder = Path.GetDirectoryName(Path.GetFullPath(planPath))!;
        // Only the run's own folder, as Start-GridRun made it: named for the run, holding the
        // experiments' folders. A plan copied elsewhere never has its folder removed.
        if (WorkingFolders.RunOf(Path.GetFileName(runFolder)) != plan.Run) return false;
        if (plan.Experiments.Any(e => !string.Equals(Path.GetDirectoryName(Path.GetFullPath(e.WorkingDirectory)), runFolder, StringComparison.Ordinal))) return false;
        try
        {
            if (Directory.EnumerateDirectories(runFolder, "exp*").Any()) return false;
            if (HoldsOutput(new DirectoryInfo(runFolder))) return false;
            var run = await Catalogs.Open(plan.Store).Runs.GetRunAsync(plan.Run, ct).ConfigureAwait(false);
            if (!run.Status.IsFinished()) return false;
        }
        catch (Exception ex) when (ex is GridException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            // A run that cannot be read (or a folder that cannot be listed) keeps its folder.
            return false;
        }
        return WorkingFolders.Remove(runFolder) is null;
    }

    /// <summary>Whether a log (*.log, *.out) with something in it is in <paramref name="folder"/> or below; links are not followed.</summary>
    private static bool HoldsOutput(DirectoryInfo folder)
    {
        foreach (var entry in folder.EnumerateFileSystemInfos())
        {
            if ((entry.Attributes & FileAttributes.ReparsePoint) != 0) continue;
            if (entry is DirectoryInfo sub) { if (HoldsOutput(sub)) return true; }
            else if (entry is FileInfo { Length: > 0 } file && (file.Extension is ".log" or ".out")) return true;
        }
        return false;
    }
}
