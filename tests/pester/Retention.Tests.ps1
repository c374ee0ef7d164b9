# The scheduled clean-up users copy (examples/retention.ps1), run as a job would run it, on both stores.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Assert-S3Server
    $script:ModulePath = Import-GridTestModule
    $env:GRID_CONFIG_HOME = Join-Path $TestDrive 'config'
    $script:Example = Join-Path $PSScriptRoot '../../examples/retention.ps1'

    function Import-Files([string] $Store, [string] $Run, [string] $Experiment = 'exp0', [hashtable] $Metrics, [string[]] $Tag) {
        $src = Join-Path $TestDrive "src/$([guid]::NewGuid().ToString('N'))"
        New-Item -ItemType Directory -Force -Path $src | Out-Null
        $bytes = [byte[]]::new(3000 + $Run.Length); [Random]::new($Run.GetHashCode()).NextBytes($bytes)
        [IO.File]::WriteAllBytes("$src/model.pt", $bytes)
        if ($Metrics) { $Metrics | ConvertTo-Json | Set-Content "$src/metrics.json" }
        $extra = if ($Tag) { @{ Tag = $Tag } } else { @{} }
        Import-GridArtifact -Path $src -Run $Run -Experiment $Experiment -Store $Store @extra | Out-Null
    }
    function Invoke-Job([string] $Store, [string] $Switches = '') {
        Invoke-ChildPwsh "Import-Module '$ModulePath'; & '$Example' -Store '$Store' -KeepRuns 20 -KeepBest 3 $Switches -WarningAction Continue | Format-List | Out-String -Width 200"
    }
    # One seed store, copied into each store under test: a copy keeps each run's record (so its
    # Created), tags and metrics, and costs no claim settling on a store without exclusive create.
    # 25 single runs, oldest first (run-03 and run-05 tagged keep), then a 5-experiment sweep.
    $script:seed = Join-Path $TestDrive 'seed'
    foreach ($i in 1..25) {
        $tag = if ($i -in 3, 5) { 'keep' } else { $null }
        Import-Files $seed ('run-{0:D2}' -f $i) -Tag $tag
    }
    $losses = 0.5, 0.1, 0.4, 0.2, 0.3
    foreach ($e in 0..4) { Import-Files $seed 'sweep' "exp$e" -Metrics @{ val_loss = $losses[$e]; epoch = 9 } }
}

AfterAll {
    Remove-Module GridArtifacts -ErrorAction Ignore
    Remove-Item Env:GRID_CONFIG_HOME -ErrorAction Ignore
}

Describe 'examples/retention.ps1 (<Kind> store)' -ForEach @(
    @{ Kind = 'folder' }
    @{ Kind = 's3' }
) {
    BeforeAll {
        $store = if ($Kind -eq 's3') { New-TestS3Store retention } else { Join-Path $TestDrive "store-$Kind" }
        Get-GridRun -Store $seed | Copy-GridRun -Destination $store | Out-Null
        $script:before = Get-GridArtifact * -Store $store | ForEach-Object { "$($_.ExperimentId)/$($_.Path)=$($_.Sha256)" }
        $script:allRuns = (Get-GridRun -Store $store).Name | Sort-Object
    }

    It 'with -WhatIf removes nothing and says what it would free' {
        $report = Invoke-Job $store '-WhatIf'
        ($report -join "`n") | Should -Match 'RunsRemoved\s+: 4'
        ($report -join "`n") | Should -Match 'ExperimentsRemoved\s+: 2'
        (Get-GridRun -Store $store).Name | Sort-Object | Should -Be $allRuns
        (Get-GridExperiment sweep -Store $store).Count | Should -Be 5
    }

    It 'keeps the last 20 runs, the tagged ones and the best 3 of the sweep, and reports the store' {
        $report = Invoke-Job $store
        $text = $report -join "`n"
        $text | Should -Match 'RunsRemoved\s+: 4'
        $text | Should -Match 'ExperimentsRemoved\s+: 2'
        $text | Should -Match 'Runs\s+: 22'
        $expected = @('run-03', 'run-05') + (7..25 | ForEach-Object { 'run-{0:D2}' -f $_ }) + 'sweep' | Sort-Object
        (Get-GridRun -Store $store).Name | Sort-Object | Should -Be $expected
        (Get-GridExperiment sweep -Store $store).Experiment | Should -Be @('exp1', 'exp3', 'exp4')
        # What stays is byte for byte what was there.
        $after = Get-GridArtifact * -Store $store | ForEach-Object { "$($_.ExperimentId)/$($_.Path)=$($_.Sha256)" }
        $after | ForEach-Object { $_ | Should -BeIn $before }
        $after.Count | Should -Be (21 + 3 * 2)   # model.pt in each, and metrics.json in the sweep's too
    }
}
