using GridArtifacts.Core.Launch;

namespace GridArtifacts;

/// <summary>
/// The plan of a run (plan.json) for the module's own scripts: the supervisor and each experiment's
/// task read it as the one typed shape Start-GridRun wrote (<see cref="RunPlan"/>), not as loose JSON.
/// <c>[GridArtifacts.PlanFile]::Read($PlanPath)</c> after the module is imported.
/// </summary>
public static class PlanFile
{
    /// <summary>Reads a plan (this release's or an earlier one's).</summary>
    /// <exception cref="InvalidDataException">Not a plan.</exception>
    public static RunPlan Read(string path) => RunPlan.Read(path);

    /// <summary>
    /// Removes the run's folder once every experiment of the run has ended and every experiment
    /// folder is gone (see <see cref="PlannedRun.RemoveRunFolderIfEndedAsync"/>); whether it did.
    /// </summary>
    public static bool RemoveRunFolderIfEnded(RunPlan plan, string planPath) =>
        PlannedRun.RemoveRunFolderIfEndedAsync(plan, planPath, CancellationToken.None).GetAwaiter().GetResult();
}
