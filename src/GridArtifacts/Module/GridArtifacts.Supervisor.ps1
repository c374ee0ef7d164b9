# Runs the experiments of one run, at most ThrottleLimit at once, each under its capture agent.
# Started detached by Start-GridRun, so the run goes on after the session that started it closes.
param([Parameter(Mandatory)] [string] $PlanPath)
$ErrorActionPreference = 'Stop'
$plan = Get-Content -Raw -LiteralPath $PlanPath | ConvertFrom-Json
$experiment = Join-Path $PSScriptRoot 'GridArtifacts.PlannedExperiment.ps1'
# One experiment's end (refused, removed, a store error) is logged by it and never ends the others.
0..(@($plan.Experiments).Count - 1) | ForEach-Object -ThrottleLimit $plan.ThrottleLimit -Parallel {
    & $using:experiment -PlanPath $using:PlanPath -Index $_ -Quiet
}
