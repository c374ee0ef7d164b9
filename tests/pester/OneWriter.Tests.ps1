# Names taken once and records with one writer, as users meet them, on both stores.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Assert-S3Server
    $script:ModulePath = Import-GridTestModule
    $env:GRID_CONFIG_HOME = Join-Path $TestDrive 'config'
    $script:Stores = @{ local = Join-Path $TestDrive 'store'; s3 = (New-TestS3Store onewriter) }
    $script:Work = Join-Path $TestDrive 'work'

    function New-Source([string] $Name, [int] $Files) {
        $src = Join-Path $TestDrive "src-$Name"
        for ($i = 0; $i -lt $Files; $i++) {
            New-Item -ItemType Directory -Force -Path "$src/part$($i % 2)" | Out-Null
            $bytes = [byte[]]::new(5000 + $i); [Random]::new($i + $Name.Length).NextBytes($bytes)
            [IO.File]::WriteAllBytes("$src/part$($i % 2)/f$i.bin", $bytes)
        }
        $src
    }
    function Get-State([string] $Run, [string] $Store) {
        $artifacts = Get-GridArtifact $Run -Store $Store | ForEach-Object { "$($_.ExperimentId)/$($_.Path)=$($_.Sha256)" }
        $experiments = Get-GridExperiment $Run -Store $Store | ForEach-Object { "$($_.Id) $($_.Status) $($_.ArtifactCount) $($_.Finished.ToString('o'))" }
        @($artifacts) + @($experiments)
    }
}

AfterAll {
    Remove-Module GridArtifacts -ErrorAction Ignore
    Remove-Item Env:GRID_CONFIG_HOME -ErrorAction Ignore
}

Describe 'A run name is taken once (<Kind>)' -ForEach @(@{ Kind = 'local' }, @{ Kind = 's3' }) {
    BeforeAll { $script:Store = $Stores[$Kind] }

    It 'Start-GridRun refuses a taken name with RunExists, and nothing of the run changes' {
        Import-GridArtifact -Path (New-Source "taken-$Kind" 6) -Run taken -Store $Store | Out-Null
        $before = Get-State taken $Store
        @($before | Where-Object { $_ -match '=[0-9a-f]{64}$' }).Count | Should -Be 6

        $caught = $null
        try { Start-GridRun -Name taken -Command 'echo x > x.txt' -Store $Store -WorkingRoot $Work | Out-Null }
        catch { $caught = $_ }
        $caught | Should -Not -BeNullOrEmpty
        $caught.FullyQualifiedErrorId | Should -Be 'RunExists,GridArtifacts.Commands.StartGridRunCommand'
        $caught.CategoryInfo.Category | Should -Be 'ResourceExists'
        $caught.Exception.Message | Should -Match "'taken' already exists"
        $caught.Exception.Message | Should -Match '-Name'

        Start-Sleep -Seconds 1   # a supervisor, had one started, would have queued experiments by now
        Get-State taken $Store | Should -Be $before
        Get-ChildItem -LiteralPath $Work -Filter 'taken*' -ErrorAction Ignore | Should -BeNullOrEmpty
    }

    It 'Import-GridArtifact refuses an experiment that has ended with ExperimentExists, and a new experiment joins the run' {
        Import-GridArtifact -Path (New-Source "ended-$Kind" 3) -Run ended -Store $Store | Out-Null
        $before = Get-State ended $Store
        $out = Import-GridArtifact -Path (New-Source "again-$Kind" 2) -Run ended -Store $Store -ErrorVariable err -ErrorAction SilentlyContinue
        $out | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -Be 'ExperimentExists,GridArtifacts.Commands.ImportGridArtifactCommand'
        $err[0].CategoryInfo.Category | Should -Be 'ResourceExists'
        $err[0].Exception.Message | Should -Match 'ended-exp0'
        Get-State ended $Store | Should -Be $before

        $joined = Import-GridArtifact -Path (New-Source "joined-$Kind" 2) -Run ended -Experiment exp1 -Store $Store
        $joined.Status | Should -Be 'Succeeded'
        $joined.ArtifactCount | Should -Be 2
        (Get-GridExperiment ended -Store $Store).Id | Should -Be @('ended-exp0', 'ended-exp1')
    }

    It 'Import-GridArtifact of a folder that holds the module''s own folders skips them, naming each' {
        $saved = @{ HOME = $env:HOME; GRID_CONFIG_HOME = $env:GRID_CONFIG_HOME }
        $homeDir = Join-Path $TestDrive "home-$Kind"
        try {
            $env:HOME = $homeDir
            $env:GRID_CONFIG_HOME = Join-Path $homeDir '.config/GridArtifacts'
            New-Item -ItemType Directory -Force -Path "$homeDir/project/results", "$homeDir/.grid/work/old-run/exp0", $env:GRID_CONFIG_HOME | Out-Null
            Set-Content "$homeDir/project/results/metrics.csv" "epoch,loss`n1,0.5"
            Set-Content "$homeDir/.grid/work/old-run/exp0/scratch.txt" 'a working folder'
            Set-GridStore $Store   # the settings file in the config folder
            # The default store, ~/.grid/store, holds a run: its records and artifacts are inside the folder imported.
            Import-GridArtifact -Path "$homeDir/project/results" -Run first -Store (Join-Path $homeDir '.grid/store') | Out-Null
            $exp = Import-GridArtifact -Path $homeDir -Run "home-$Kind" -WarningVariable warned
            $exp.Store | Should -Be $Store
            (Get-GridArtifact "home-$Kind" -Store $Store).Path | Should -Be @('project/results/metrics.csv')
            ($warned -join "`n") | Should -Match ([regex]::Escape((Join-Path $homeDir '.grid')))
            ($warned -join "`n") | Should -Match ([regex]::Escape($env:GRID_CONFIG_HOME))
        }
        finally {
            foreach ($k in $saved.Keys) { [Environment]::SetEnvironmentVariable($k, $saved[$k]) }
        }
    }
}

Describe 'Import-GridArtifact of a folder that holds the folder store' {
    It 'skips the store and says so; a folder inside the store is refused' {
        $project = Join-Path $TestDrive 'project'
        New-Item -ItemType Directory -Force -Path "$project/results" | Out-Null
        Set-Content "$project/results/metrics.csv" "epoch,loss`n1,0.5"
        $store = Join-Path $project 'store'
        Import-GridArtifact -Path "$project/results" -Run inner -Store $store | Out-Null
        Import-GridArtifact -Path $project -Run outer -Store $store -WarningVariable warned | Out-Null
        (Get-GridArtifact outer -Store $store).Path | Should -Be @('results/metrics.csv')
        ($warned -join "`n") | Should -Match "Skipped '$([regex]::Escape($store))': it is the store's own folder"

        Import-GridArtifact -Path (Join-Path $store 'runs/inner') -Run copied -Store $store -ErrorVariable err -ErrorAction SilentlyContinue | Out-Null
        $err[0].FullyQualifiedErrorId | Should -Be 'SourceInStore,GridArtifacts.Commands.ImportGridArtifactCommand'
        Get-GridRun copied -Store $store -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }
}
