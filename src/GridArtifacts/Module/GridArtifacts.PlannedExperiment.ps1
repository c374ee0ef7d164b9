# Runs experiment number -Index of a run's plan (plan.json, written by Start-GridRun) under its
# capture agent: the run's supervisor calls it for each experiment, and each Slurm array task for
# exp$SLURM_ARRAY_TASK_ID. The exit code is the experiment script's (1 when nothing was run).
param(
    [Parameter(Mandatory)] [string] $PlanPath,
    [Parameter(Mandatory)] [int] $Index,
    # Warnings (a file not synced yet, the store away for a while) are not written.
    [switch] $Quiet
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot 'GridArtifacts.psd1')
# The plan as Start-GridRun wrote it: one typed shape (GridArtifacts.Core.Launch.RunPlan).
$plan = [GridArtifacts.PlanFile]::Read($PlanPath)
if ($Index -lt 0 -or $Index -ge $plan.Experiments.Count) {
    [Console]::Error.WriteLine("$($plan.Run): the plan has no experiment number $Index.")
    exit 1
}
$e = $plan.Experiments[$Index]
$keep = $plan.KeepWorkingDirectory

try {
    $parameters = @{}
    foreach ($p in $e.Parameters.GetEnumerator()) { $parameters[$p.Key] = $p.Value }
    $roots = @($plan.ArtifactPath | Where-Object { $_ })
    New-Item -ItemType Directory -Force -Path $e.WorkingDirectory | Out-Null
    $warnings = if ($Quiet) { 'SilentlyContinue' } else { 'Continue' }
    # -Queued: an experiment removed or stopped while it waited runs nothing and creates nothing.
    $null = Invoke-GridExperiment -Run $plan.Run -Experiment $e.Experiment -Store $plan.Store -WorkingDirectory $e.WorkingDirectory `
        -ArtifactPath $roots -Parameter $parameters -Queued -Command @($e.Command) -WarningAction $warnings -ErrorAction Stop `
        -RemoveWorkingDirectory:(-not $keep)
    $code = $LASTEXITCODE
    # The run's folder goes once every experiment has ended (grid-agent plan does the same).
    if (-not $keep) { $null = [GridArtifacts.PlanFile]::RemoveRunFolderIfEnded($plan, $PlanPath) }
    exit $code
}
catch {
    # Refused (stopped or removed while it waited), or a store error: said, and nothing else is touched.
    [Console]::Error.WriteLine("$($plan.Run)-$($e.Experiment): $($_.FullyQualifiedErrorId): $($_.Exception.Message)")
    exit 1
}
