<#
.SYNOPSIS
    A scheduled clean-up of an artifact store: keeps the last runs, everything tagged keep, and the
    best experiments of each sweep; removes the rest; reports what the store holds afterwards.

.DESCRIPTION
    Meant for cron or a systemd timer (docs/retention.md). Only finished runs and experiments are
    ever removed; protected runs are kept with a warning; nothing is stopped. With -WhatIf it
    removes nothing and reports what it would free.

.EXAMPLE
    pwsh -NoProfile -File retention.ps1 -Store s3://bucket/grid -WhatIf
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    # The store (a folder or s3://bucket/prefix); the module's default store when omitted.
    [string] $Store,
    # How many of the newest finished runs to keep, whatever their age.
    [int] $KeepRuns = 20,
    # How many experiments of each sweep (a run of more than one) to keep, the best by -Metric.
    [int] $KeepBest = 3,
    # The metric that ranks a sweep's experiments, lowest first (see -Descending).
    [string] $Metric = 'val_loss',
    # Ranks highest first, for metrics where more is better (accuracy).
    [switch] $Descending,
    # Runs and experiments with one of these tags are always kept.
    [string[]] $KeepTag = @('keep')
)

$at = if ($Store) { @{ Store = $Store } } else { @{} }
$removing = @{ Confirm = $false; PassThru = $true; ExcludeTag = $KeepTag } + $at

# The newest runs and the tagged ones stay; of the other finished runs, each goes whole.
$runs = @(Remove-GridRun -KeepLatest $KeepRuns @removing)

# Within each sweep that stays (under -WhatIf, that would stay), the best experiments by the metric.
# A sweep without the metric is left whole and counted, not an error every night.
$gone = @($runs.Run)
$experiments = @(Get-GridRun -Finished @at | Where-Object { $_.ExperimentCount -gt 1 -and $_.Name -notin $gone } |
    Remove-GridExperiment -KeepBest $KeepBest -By $Metric -Descending:$Descending @removing -ErrorVariable refused -ErrorAction SilentlyContinue)
$withoutMetric = @($refused | Where-Object { $_.FullyQualifiedErrorId -like 'MetricNotFound*' })
$refused | Where-Object { $_ -notin $withoutMetric } | ForEach-Object { Write-Error -ErrorRecord $_ }

$freed = ($runs + $experiments | Measure-Object Bytes -Sum).Sum
[pscustomobject]@{
    WhatIf               = [bool]$WhatIfPreference
    RunsRemoved          = $runs.Count
    ExperimentsRemoved   = $experiments.Count
    BytesFreed           = [long]$freed
    SweepsWithoutMetric  = $withoutMetric.Count
}
Measure-GridStore -Top 10 @at
