# Runs the experiments of one run, at most ThrottleLimit at once, each under its capture agent.
# Started detached by Start-GridRun, so the run goes on after the session that started it closes.
param([Parameter(Mandatory)] [string] $PlanPath)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot 'GridArtifacts.psd1')
# The plan as Start-GridRun wrote it: one typed shape (GridArtifacts.Core.Launch.RunPlan).
$plan = [GridArtifacts.PlanFile]::Read($PlanPath)
$experiment = Join-Path $PSScriptRoot 'GridArtifacts.PlannedExperiment.ps1'
# One experiment's end (refused, removed, a store error) is logged by it and never ends the others.
0..($plan.Experiments.Count - 1) | ForEach-Object -ThrottleLimit $plan.ThrottleLimit -Parallel {
    & $using:experiment -PlanPath $using:PlanPath -Index $_ -Quiet
}
