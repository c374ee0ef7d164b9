# Measure-GridStore as a scheduled job's report meets it, on both stores: totals of files of known
# size, the largest runs, one object per run, the tag filter, -Exact, the views and tab completion.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Assert-S3Server
    $script:ModulePath = Import-GridTestModule
    $env:GRID_CONFIG_HOME = Join-Path $TestDrive 'config'

    # One experiment of files of the sizes given, imported as users import.
    function New-Experiment([string] $Store, [string] $Run, [string] $Experiment, [int[]] $Sizes, [string[]] $Tag = @()) {
        $src = Join-Path $TestDrive "src/$([guid]::NewGuid().ToString('N'))"
        New-Item -ItemType Directory -Force -Path $src | Out-Null
        $i = 0
        foreach ($size in $Sizes) {
            $bytes = [byte[]]::new($size); [Random]::new($size).NextBytes($bytes)
            [IO.File]::WriteAllBytes("$src/file-$(($i++)).bin", $bytes)
        }
        $tags = if ($Tag) { @{ Tag = $Tag } } else { @{} }
        Import-GridArtifact -Path $src -Run $Run -Experiment $Experiment -Store $Store @tags | Out-Null
    }
    function Complete([string] $Line) { (TabExpansion2 -inputScript $Line -cursorColumn $Line.Length).CompletionMatches.CompletionText }
}

AfterAll {
    Remove-Module GridArtifacts -ErrorAction Ignore
    Remove-Item Env:GRID_CONFIG_HOME -ErrorAction Ignore
}

Describe 'Measure-GridStore (<Kind> store)' -ForEach @(
    @{ Kind = 'folder' }
    @{ Kind = 's3' }
) {
    BeforeAll {
        # Known data, read by every test below (none of them writes).
        $store = if ($Kind -eq 's3') { New-TestS3Store measure } else { Join-Path $TestDrive "store-$([guid]::NewGuid().ToString('N'))" }
        New-Experiment $store big-run exp0 3000, 1000
        New-Experiment $store big-run exp1 500
        New-Experiment $store mid-run exp0 2000 -Tag keep
        New-Experiment $store small-run exp0 100
        Protect-GridRun small-run -Store $store
    }

    It 'totals the runs, experiments, artifacts and bytes imported, with the largest runs first' {
        $m = Measure-GridStore -Store $store
        $m | Should -BeOfType ([GridArtifacts.Model.GridStoreMeasure])
        $m.Store | Should -Be $store
        $m.Runs | Should -Be 3
        $m.ActiveRuns | Should -Be 0
        $m.ProtectedRuns | Should -Be 1
        $m.Experiments | Should -Be 4
        $m.Artifacts | Should -Be 5
        $m.Bytes | Should -Be 6600
        $m.OtherBytes | Should -BeNullOrEmpty
        $m.Exact | Should -BeFalse
        $m.Top.Run | Should -Be @('big-run', 'mid-run', 'small-run')
        $m.Top.Bytes | Should -Be @(4500, 2000, 100)
        (Measure-GridStore -Store $store -Top 1).Top.Run | Should -Be 'big-run'
        (Measure-GridStore -Store $store -Top 0).Top | Should -BeNullOrEmpty
    }

    It 'writes one object per run with -PerRun, largest first, that pipes on to Get-GridRun' {
        $runs = Measure-GridStore -PerRun -Store $store
        $runs | Should -BeOfType ([GridArtifacts.Model.GridRunMeasure])
        $runs.Run | Should -Be @('big-run', 'mid-run', 'small-run')
        $runs.Experiments | Should -Be @(2, 1, 1)
        $runs.Artifacts | Should -Be @(3, 1, 1)
        $runs.Bytes | Should -Be @(4500, 2000, 100)
        $runs.Status | Should -Be @('Succeeded', 'Succeeded', 'Succeeded')
        $runs.Protected | Should -Be @($false, $false, $true)
        ($runs | Select-Object -First 1 | Get-GridRun).ArtifactBytes | Should -Be 4500
    }

    It 'measures only the runs a tag or a name matches' {
        $kept = Measure-GridStore -Tag 'ke*' -Store $store
        $kept.Runs | Should -Be 1
        $kept.Bytes | Should -Be 2000
        $kept.Top.Run | Should -Be 'mid-run'
        $tagged = Measure-GridStore -PerRun -Tag keep -Store $store
        $tagged.Run | Should -Be 'mid-run'
        $tagged.Tags | Should -Be 'keep'
        (Measure-GridStore '*l-run', 'big-run' -Store $store).Bytes | Should -Be 4600
        Measure-GridStore no-such-run -Store $store -ErrorVariable err -ErrorAction SilentlyContinue | Out-Null
        $err[0].FullyQualifiedErrorId | Should -BeLike 'RunNotFound,*'
    }

    It 'sums what is stored with -Exact: the same artifacts, and the records and logs apart' {
        $m = Measure-GridStore -Exact -Store $store
        $m.Exact | Should -BeTrue
        $m.Artifacts | Should -Be 5
        $m.Bytes | Should -Be 6600
        $m.OtherBytes | Should -BeGreaterThan 0
        $runs = Measure-GridStore -PerRun -Exact -Store $store
        $runs.Bytes | Should -Be @(4500, 2000, 100)
        ($runs.OtherBytes | Measure-Object -Sum).Sum | Should -Be $m.OtherBytes
        if ($Kind -eq 'folder') {
            # Every byte of the folder's runs, as the file system counts them.
            (Get-ChildItem -Recurse -File (Join-Path $store 'runs') | Measure-Object Length -Sum).Sum | Should -Be ($m.Bytes + $m.OtherBytes)
        }
    }

    It 'shows sizes for people in its views' {
        $text = Measure-GridStore -Store $store | Out-String -Width 200
        $text | Should -Match 'Runs\s+: 3 \(0 active, 1 protected\)'
        $text | Should -Match 'Size\s+: 6.4 KiB'
        $text | Should -Match '4.4 KiB\s+big-run'
        $text | Should -Not -Match 'OtherSize'
        Measure-GridStore -Exact -Store $store | Out-String -Width 200 | Should -Match 'OtherSize\s+: \d'
        $table = Measure-GridStore -PerRun -Store $store | Out-String -Width 200
        $table | Should -Match 'Run\s+Status\s+Experiments\s+Artifacts\s+Size\s+Protected\s+Tags'
        $table | Should -Match 'mid-run\s+Succeeded\s+1\s+1\s+2 KiB\s+keep'
        $table | Should -Match 'small-run\s+Succeeded\s+1\s+1\s+100 B\s+yes'
    }

    It 'completes run names and tags from the store typed' {
        Complete "Measure-GridStore -Store '$store' mi" | Should -Be 'mid-run'
        Complete "Measure-GridStore -Store '$store' -Tag k" | Should -Be 'keep'
    }
}
