# The default views as users meet them in a terminal of 80 and of 120 columns: every table fits,
# its headers whole on one line, with a run name of 15 characters; a sweep's experiments are told
# apart by the parameters that vary and the metrics that matter.
BeforeDiscovery {
    # One test per table view and width, named by the view.
    $module = if ($env:GRID_TEST_MODULE) { $env:GRID_TEST_MODULE } else { Join-Path $PSScriptRoot '../../out/GridArtifacts' }
    $views = ([xml](Get-Content -Raw (Join-Path $module 'GridArtifacts.Format.ps1xml'))).Configuration.ViewDefinitions.View | Where-Object { $_.TableControl }
    $script:Cases = foreach ($w in 80, 120) { foreach ($v in $views) { @{ View = $v.Name; Width = $w } } }
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:ModulePath = Import-GridTestModule
    $env:GRID_CONFIG_HOME = Join-Path $TestDrive 'config'
    $script:Store = Join-Path $TestDrive 'store'
    $script:SavedStore = $env:GRID_STORE
    $env:GRID_STORE = $Store      # for Get-GridStore

    # One experiment as Lightning leaves it: a checkpoint and lightning_logs/version_0/metrics.csv.
    function Import-Experiment([string] $Run, [string] $Experiment, [hashtable] $Parameter, [string] $Csv, [string[]] $Tag = @()) {
        $src = Join-Path $TestDrive "src/$([guid]::NewGuid().ToString('N'))"
        New-Item -ItemType Directory -Force -Path "$src/lightning_logs/version_0" | Out-Null
        [IO.File]::WriteAllBytes("$src/last.ckpt", [byte[]]::new(150000))
        if ($Csv) { [IO.File]::WriteAllText("$src/lightning_logs/version_0/metrics.csv", $Csv) }
        $tags = if ($Tag) { @{ Tag = $Tag } } else { @{} }
        Import-GridArtifact -Path $src -Run $Run -Experiment $Experiment -Parameter $Parameter -Store $Store @tags | Out-Null
    }

    # A sweep of 4 under a run name of 15 characters: lr varies, batch does not.
    $script:Sweep = 'resnet50-sweep1'
    $script:Rates = '0.1', '0.03', '0.01', '0.003'
    for ($i = 0; $i -lt 4; $i++) {
        Import-Experiment $Sweep "exp$i" @{ lr = $Rates[$i]; batch = '64' } "epoch,step,train_loss,val_loss,val_acc`n0,49,0.9,,`n0,49,,0.8$($i + 1),0.6$($i + 1)`n9,499,0.2$($i + 1),0.4$($i + 1),0.9$($i + 1)`n" -Tag lr-sweep
    }
    Add-GridTag $Sweep keep, resnet50 -Store $Store
    Protect-GridRun $Sweep -Store $Store
    # A run whose name leaves no room for its ids, and values longer than a column.
    $script:Long = 'nightly-baseline-imagenet-resnet50-long-name'
    Import-Experiment $Long exp1 @{ data = '/datasets/imagenet/shard-one' } "step,loss`n1,0.5`n"
    Import-Experiment $Long exp11 @{ data = '/datasets/imagenet/shard-two' } "step,loss`n1,0.25`n"

    $script:Server = Start-GridArtifactServer -Store $Store
    # A sample of every type the module formats, as its commands emit it.
    $script:Samples = @{
        'GridArtifacts.Model.GridRun'          = { Get-GridRun -Store $Store }
        'GridArtifacts.Model.GridExperiment'   = { Get-GridExperiment $Sweep, $Long -Store $Store }
        'GridArtifacts.Model.GridArtifact'     = { Get-GridArtifact $Sweep, $Long -Store $Store }
        'GridArtifacts.Model.GridComparison'   = { Compare-GridExperiment "$Sweep-exp0" "$Sweep-exp1" -Store $Store -IncludeEqual }
        'GridArtifacts.Model.GridSaveResult'   = { Get-GridArtifact "$Sweep-exp0" -Store $Store | Save-GridArtifact -Destination (Join-Path $TestDrive "saved-$([guid]::NewGuid().ToString('N'))") -PassThru }
        'GridArtifacts.Model.GridStoreInfo'    = { Get-GridStore }
        'GridArtifacts.Model.GridArtifactLink' = { New-GridArtifactLink "$Sweep-exp0" -Store $Store }
        'GridArtifacts.Model.GridRunMeasure'   = { Measure-GridStore -PerRun -Store $Store }
        'GridArtifacts.Model.GridRemoval'      = { Remove-GridRun $Long -Store $Store -WhatIf -PassThru 6>$null; Remove-GridExperiment "$Long-exp11" -Store $Store -WhatIf -PassThru 6>$null }
    }

    # The table views of the module's format file, with their headers.
    $format = [xml](Get-Content -Raw (Join-Path $ModulePath 'GridArtifacts.Format.ps1xml'))
    $script:Tables = @($format.Configuration.ViewDefinitions.View | Where-Object { $_.TableControl } | ForEach-Object {
        @{ View = $_.Name; Type = $_.ViewSelectedBy.TypeName; Labels = @($_.TableControl.TableHeaders.TableColumnHeader.Label) }
    })

    # The rows of a table as text at a width, and what is wrong with its layout: a line longer than the
    # width, a header on more than one line, or a header cut (its dashes shorter than its label).
    function Test-Table([string] $Text, [string[]] $Labels, [int] $Width) {
        $lines = $Text -split '\r?\n'
        foreach ($l in $lines) { if ($l.Length -gt $Width) { "line of $($l.Length) characters: '$l'" } }
        $dashes = @(for ($i = 0; $i -lt $lines.Count; $i++) { if ($lines[$i] -match '^-[- ]*$') { $i } })
        if ($dashes.Count -eq 0) { 'no header' }
        foreach ($i in $dashes) {
            if ($i -lt 1 -or ($i -ge 2 -and $lines[$i - 2].Trim())) { "a header on more than one line: '$($lines[$i - 2])' / '$($lines[$i - 1])'" }
            $header = @($lines[$i - 1].Trim() -split '\s+')
            if (($header -join ' ') -cne ($Labels -join ' ')) { "headers '$($header -join ' ')', not '$($Labels -join ' ')'" }
            $cut = @($lines[$i].Trim() -split '\s+' | ForEach-Object Length)
            if (($cut -join ',') -ne (@($Labels | ForEach-Object Length) -join ',')) { "a header cut: '$($lines[$i])'" }
        }
    }
    # The row of a table that starts with $Key.
    function Get-Row([string] $Text, [string] $Key) { @($Text -split '\r?\n' | Where-Object { $_.StartsWith($Key) })[0] }
}

AfterAll {
    Stop-GridArtifactServer -Store $Store -ErrorAction Ignore
    Remove-Module GridArtifacts -ErrorAction Ignore
    Remove-Item Env:GRID_CONFIG_HOME -ErrorAction Ignore
    $env:GRID_STORE = $SavedStore
}

Describe 'Tables in 80 and 120 columns' {
    It 'has a sample of every type with a table view' {
        $Tables.Type | Where-Object { -not $Samples.ContainsKey($_) } | Should -BeNullOrEmpty
    }

    It 'fits <View> in <Width> columns, every header whole on one line' -ForEach $Cases {
        $table = $Tables | Where-Object View -eq $View
        $items = @(& $Samples[$table.Type])
        $items.Count | Should -BeGreaterThan 0
        $text = $items | Format-Table -View $View | Out-String -Width $Width
        Test-Table $text $table.Labels $Width | Should -BeNullOrEmpty -Because $text
    }

    It 'shows a name of 15 characters and the experiment ids whole in 80 columns, and more at 120' {
        $runs80 = Get-GridRun -Store $Store | Out-String -Width 80
        $runs120 = Get-GridRun -Store $Store | Out-String -Width 120
        Get-Row $runs80 $Sweep | Should -Match "^$Sweep\s+Succeeded\s+4\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+yes\s+keep,lr-s"
        $runs80 | Should -Not -Match 'keep,lr-sweep,resnet50'
        $runs120 | Should -Match 'keep,lr-sweep,resnet50'

        $exps80 = Get-GridExperiment $Sweep -Store $Store | Out-String -Width 80
        $exps120 = Get-GridExperiment $Sweep -Store $Store | Out-String -Width 120
        foreach ($i in 0..3) {
            Get-Row $exps80 "$Sweep-exp$i " | Should -Match "^$Sweep-exp$i\s+Succeeded\s+lr=$($Rates[$i])\s+val_loss=0\.4$($i + 1) "
            Get-Row $exps80 "$Sweep-exp$i " | Should -Not -Match "train_loss=0\.2$($i + 1)"
            Get-Row $exps120 "$Sweep-exp$i " | Should -Match "val_loss=0\.4$($i + 1) train_loss=0\.2$($i + 1)"
        }

        $files80 = Get-GridArtifact $Sweep -Store $Store | Out-String -Width 80
        $files120 = Get-GridArtifact $Sweep -Store $Store | Out-String -Width 120
        Get-Row $files80 "$Sweep-exp3 " | Should -Match "^$Sweep-exp3\s+last\.ckpt\s+146\.5 KiB\s+\d{4}-\d\d-\d\d \d\d:\d\d$"
        $files80 | Should -Not -Match 'version_0/metrics\.csv'
        $files120 | Should -Match "$Sweep-exp3\s+lightning_logs/version_0/metrics\.csv\s+\d+ B"
    }

    It 'shortens a long run name in an id, and keeps its -expN' {
        $text = Get-GridExperiment $Long -Store $Store | Out-String -Width 80
        $text | Should -Match "(?m)^nightly-baseline-i…-exp1 "
        $text | Should -Match "(?m)^nightly-baseline-…-exp11 "
        Get-GridArtifact $Long -Store $Store | Out-String -Width 80 | Should -Match "(?m)^nightly-baseline-…-exp11\s+last\.ckpt"
    }

    It 'shows a whole link by default, however wide its URL' {
        $link = New-GridArtifactLink "$Sweep-exp0" last.ckpt -Store $Store
        $text = $link | Out-String -Width 80
        ($text -split '\r?\n' | Where-Object Length -gt 80) | Should -BeNullOrEmpty
        $text -replace '\s', '' | Should -BeLike "*$($link.Url.AbsoluteUri)*"
        $text | Should -Match "Experiment\s*:\s*$Sweep-exp0"
    }
}

Describe 'A sweep in the table' {
    It 'shows the parameters that vary and the metrics that matter, not the constant ones or the counters' {
        $exps = Get-GridExperiment $Sweep -Store $Store
        $exps.VaryingParameters | Sort-Object -Unique | Should -Be 'lr'
        $exps[0].KeyMetrics | Should -Be @('val_loss', 'train_loss', 'val_acc')
        $text = $exps | Out-String -Width 80
        $text | Should -Match 'Id\s+Status\s+Parameters\s+Metrics'
        $text | Should -Not -Match 'batch='
        $text | Should -Not -Match 'epoch=|step='
        Get-Row $text "$Sweep-exp2 " | Should -Match "lr=0\.01\s+val_loss=0\.43 "
    }

    It 'shows every parameter of an experiment listed alone' {
        $one = Get-GridExperiment "$Sweep-exp1" -Store $Store
        $one.VaryingParameters | Should -BeNullOrEmpty
        Get-Row ($one | Out-String -Width 80) "$Sweep-exp1 " | Should -Match 'batch=64 lr=0\.03\s+val_loss=0\.42'
    }

    It 'shortens a long parameter value to 12 characters' {
        $text = Get-GridExperiment $Long -Store $Store | Out-String -Width 80
        $text | Should -Match 'data=/datasets/i…\s+loss=0\.25'
        $text | Should -Not -Match 'step='
    }

    It 'shows the metrics -Metric names, in its order, wildcards too, and lists every experiment' {
        $exps = Get-GridExperiment $Sweep -Store $Store -Metric val_acc, '*train*'
        $exps.Count | Should -Be 4
        $exps[3].Metrics['val_loss'] | Should -Be 0.44
        Get-Row ($exps | Out-String -Width 120) "$Sweep-exp3 " | Should -Match 'lr=0\.003\s+val_acc=0\.94 train_loss=0\.24$'
        (Get-GridExperiment $Sweep -Store $Store -Metric nothing)[0].KeyMetrics | Should -BeNullOrEmpty
    }

    It 'completes -Metric from the experiments of the run named' {
        $line = "Get-GridExperiment $Sweep -Store '$Store' -Metric val_"
        (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Be @('val_acc', 'val_loss')
    }
}
