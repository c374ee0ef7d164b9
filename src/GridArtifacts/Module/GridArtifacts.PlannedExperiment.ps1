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

# The run's folder (plan, job script, logs) goes once every experiment of the run has ended and
# every experiment folder is gone; a log with something in it keeps it (Remove-GridWorkingDirectory
# removes it later). Whichever experiment ends last does it; two at once are harmless.
function Remove-RunFolder {
    $runFolder = Split-Path -Parent $PlanPath
    if (Get-ChildItem -LiteralPath $runFolder -Directory -Filter 'exp*' -ErrorAction Ignore) { return }
    $logs = @(Get-ChildItem -LiteralPath $runFolder -Recurse -File -Include '*.log', '*.out' -ErrorAction Ignore)
    if ($logs | Where-Object Length -gt 0) { return }
    # A run that cannot be read, or was removed meanwhile, keeps its folder: its queued experiments
    # (not started yet, so no folder of theirs) still read plan.json. Remove-GridWorkingDirectory removes it later.
    $run = Get-GridRun -Name $plan.Run -Store $plan.Store -ErrorAction Ignore
    if (-not $run -or $run.Status -in 'Queued', 'Running', 'Syncing') { return }
    # Links in it are removed as links: nothing outside it is touched.
    try { [IO.Directory]::Delete($runFolder, $true) } catch [IO.IOException] { }
}

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
    if (-not $keep) { Remove-RunFolder }
    exit $code
}
catch {
    # Refused (stopped or removed while it waited), or a store error: said, and nothing else is touched.
    [Console]::Error.WriteLine("$($plan.Run)-$($e.Experiment): $($_.FullyQualifiedErrorId): $($_.Exception.Message)")
    exit 1
}
