# Compare-GridExperiment as users meet it, on both stores: the pipeline form, and a run against its copy in another store.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Assert-S3Server
    $script:ModulePath = Import-GridTestModule
    $env:GRID_CONFIG_HOME = Join-Path $TestDrive 'config'

    # sweep: exp1 has another model.bin of the same size and another lr; exp2 a larger model.bin, another batch and only2.txt.
    function New-Sweep([string] $Store) {
        foreach ($e in @{ Name = 'exp0'; Seed = 1; Size = 1000; Lr = '0.1'; Batch = '8'; Only = 'only0.txt' },
                       @{ Name = 'exp1'; Seed = 2; Size = 1000; Lr = '0.01'; Batch = '8' },
                       @{ Name = 'exp2'; Seed = 1; Size = 2000; Lr = '0.1'; Batch = '16'; Only = 'only2.txt' }) {
            $src = Join-Path $TestDrive "src/$([guid]::NewGuid().ToString('N'))"
            New-Item -ItemType Directory -Force -Path $src | Out-Null
            $bytes = [byte[]]::new($e.Size); [Random]::new($e.Seed).NextBytes($bytes)
            [IO.File]::WriteAllBytes("$src/model.bin", $bytes)
            Set-Content -Path "$src/config.json" -Value '{ "layers": 4 }' -NoNewline
            if ($e.Only) { Set-Content -Path "$src/$($e.Only)" -Value $e.Name -NoNewline }
            Import-GridArtifact -Path $src -Run sweep -Experiment $e.Name -Store $Store -Parameter @{ lr = $e.Lr; batch = $e.Batch } | Out-Null
        }
    }
    # One line per row: what was compared, and what differs.
    function Show($Rows) {
        @($Rows | ForEach-Object { "$($_.Difference) $($_.Kind) $($_.Experiment) $($_.Name) $($_.SideIndicator) $($_.ReferenceValue)|$($_.DifferenceValue) $($_.ReferenceSize)|$($_.DifferenceSize) $($_.HashCompared)" })
    }
}

AfterAll {
    Remove-Module GridArtifacts -ErrorAction Ignore
    Remove-Item Env:GRID_CONFIG_HOME -ErrorAction Ignore
}

Describe 'Compare-GridExperiment (<Kind> store)' -ForEach @(
    @{ Kind = 'folder' }
    @{ Kind = 's3' }
) {
    BeforeAll {
        $folder = Join-Path $TestDrive "store-$([guid]::NewGuid().ToString('N'))"
        $s3 = New-TestS3Store compare
        $script:Store, $script:Other = if ($Kind -eq 's3') { $s3, $folder } else { $folder, $s3 }
        New-Sweep $Store
        # No default store: a name is read from the store of the object on the pipeline, or -Store.
        $env:GRID_STORE = Join-Path $TestDrive 'no-such-store'
    }
    AfterAll { Remove-Item Env:GRID_STORE -ErrorAction Ignore }

    It 'compares each piped experiment with the reference, read from the store the experiments came from' {
        $rows = Get-GridExperiment sweep -Store $Store | Compare-GridExperiment sweep-exp0
        $rows | Should -BeOfType ([GridArtifacts.Model.GridComparison])
        Show $rows | Should -Be @(
            'sweep-exp1 Parameter  lr <> 0.1|0.01 | '
            'sweep-exp1 Artifact  model.bin <> | 1000|1000 True'
            'sweep-exp1 Artifact  only0.txt <= | 4| '
            'sweep-exp2 Parameter  batch <> 8|16 | '
            'sweep-exp2 Artifact  model.bin <> | 1000|2000 True'
            'sweep-exp2 Artifact  only0.txt <= | 4| '
            'sweep-exp2 Artifact  only2.txt => | |4 '
        )
        @($rows | Where-Object Reference -ne 'sweep-exp0') | Should -BeNullOrEmpty
    }

    It 'adds the equal ones with -IncludeEqual, and keeps only the kinds asked for' {
        Show (Compare-GridExperiment sweep-exp0 sweep-exp1 -Store $Store -IncludeEqual -Kind Artifact) | Should -Be @(
            'sweep-exp1 Artifact  config.json == | 15|15 True'
            'sweep-exp1 Artifact  model.bin <> | 1000|1000 True'
            'sweep-exp1 Artifact  only0.txt <= | 4| '
        )
        Show (Get-GridExperiment sweep-exp2 -Store $Store | Compare-GridExperiment sweep-exp0 -Kind Parameter -IncludeEqual) | Should -Be @(
            'sweep-exp2 Parameter  batch <> 8|16 | '
            'sweep-exp2 Parameter  lr == 0.1|0.1 | '
        )
    }

    It 'shows a table with the size and a short hash of each side' {
        $text = Compare-GridExperiment sweep-exp0 sweep-exp1 -Store $Store | Out-String -Width 200
        $text | Should -Match 'Compared: sweep-exp0 with sweep-exp1'
        $text | Should -Match 'Kind\s+Name\s+Side\s+Reference\s+Difference'
        $sha = (Get-GridArtifact sweep-exp1 model.bin -Store $Store).Sha256.Substring(0, 8)
        $text | Should -Match "Artifact\s+model\.bin\s+<>\s+1000 B [0-9a-f]{8}…\s+1000 B $sha…"
        $text | Should -Match 'Parameter\s+lr\s+<>\s+0\.1\s+0\.01'
    }

    It 'finds a run equal to its copy in another store, and then what was added to the copy' {
        Copy-GridRun sweep -Store $Store -Destination $Other
        Compare-GridExperiment (Get-GridRun sweep -Store $Store) (Get-GridRun sweep -Store $Other) | Should -BeNullOrEmpty
        $all = Compare-GridExperiment (Get-GridRun sweep -Store $Store) (Get-GridRun sweep -Store $Other) -IncludeEqual
        # 3 experiments, the run's 2 parameters, 2 per experiment, and 3 + 2 + 3 artifacts.
        $all.Count | Should -Be 19
        $all.SideIndicator | Sort-Object -Unique | Should -Be '=='
        @($all | Where-Object Kind -eq Artifact | Where-Object HashCompared -ne $true) | Should -BeNullOrEmpty

        # The reference from one store, the experiments piped from the other.
        Show (Get-GridExperiment sweep -Store $Other | Compare-GridExperiment (Get-GridExperiment sweep-exp1 -Store $Store) -Kind Parameter) | Should -Be @(
            'sweep-exp0 Parameter  lr <> 0.01|0.1 | '
            'sweep-exp2 Parameter  batch <> 8|16 | '
            'sweep-exp2 Parameter  lr <> 0.01|0.1 | '
        )

        $src = Join-Path $TestDrive "src-extra-$Kind"
        New-Item -ItemType Directory -Force -Path $src | Out-Null
        Set-Content -Path "$src/notes.txt" -Value 'later'
        Import-GridArtifact $src -Run sweep -Experiment exp3 -Store $Other | Out-Null
        Show (Compare-GridExperiment sweep (Get-GridRun sweep -Store $Other) -Store $Store) | Should -Be @('sweep Experiment exp3 exp3 => | | ')
    }

    It 'refuses a wildcard, a run against an experiment, and an unknown experiment, with their ids' {
        { Compare-GridExperiment 'sweep-*' sweep-exp0 -Store $Store } | Should -Throw -ErrorId 'WildcardNotSupported,GridArtifacts.Commands.CompareGridExperimentCommand'
        { Compare-GridExperiment sweep-exp9 sweep-exp0 -Store $Store } | Should -Throw -ErrorId 'ExperimentNotFound,GridArtifacts.Commands.CompareGridExperimentCommand'
        $rows = Compare-GridExperiment sweep-exp0 sweep, sweep-exp9, sweep-exp1 -Store $Store -Kind Parameter -ErrorVariable err -ErrorAction SilentlyContinue
        Show $rows | Should -Be @('sweep-exp1 Parameter  lr <> 0.1|0.01 | ')
        $err.FullyQualifiedErrorId | Should -Be @('CompareMismatch,GridArtifacts.Commands.CompareGridExperimentCommand', 'ExperimentNotFound,GridArtifacts.Commands.CompareGridExperimentCommand')
        $err[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
        $err[1].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }
}

Describe 'Compare-GridExperiment without hashes' {
    It 'compares by size, with HashCompared $false and one warning for the call' {
        $store = Join-Path $TestDrive 'unhashed-store'
        New-Sweep $store
        # Files put into the store by hand have no manifest entry, so no hash.
        foreach ($e in @{ Name = 'exp0'; Text = 'abc' }, @{ Name = 'exp1'; Text = 'abcd' }, @{ Name = 'exp2'; Text = 'xyz' }) {
            Set-Content -Path (Join-Path $store "runs/sweep/$($e.Name)/artifacts/by-hand.txt") -Value $e.Text -NoNewline
        }
        $rows = Get-GridExperiment sweep -Store $store | Compare-GridExperiment sweep-exp0 -Kind Artifact -WarningVariable warn -WarningAction SilentlyContinue
        @($rows | Where-Object Name -eq by-hand.txt | ForEach-Object { "$($_.Difference) $($_.SideIndicator) $($_.HashCompared)" }) | Should -Be @('sweep-exp1 <> False')
        $warn.Count | Should -Be 1
        # exp0 with itself, exp1 and exp2: xyz and abc are the same size, so only the warning says that exp2's may differ.
        $warn[0].Message | Should -Match '^3 artifact\(s\) were compared by size only.*sweep-exp0/by-hand\.txt'
    }
}
