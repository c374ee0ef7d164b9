# Kills, full disks, two processes at once, and secrets: the module as users run it, in child processes.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Assert-S3Server
    $script:ModulePath = Import-GridTestModule
    $env:GRID_CONFIG_HOME = Join-Path $TestDrive 'config'
    $env:GRID_STORE = Join-Path $TestDrive 'store'

    function Get-Sha256([string] $Path) { (Get-FileHash -LiteralPath $Path -Algorithm SHA256).Hash.ToLowerInvariant() }

    # Random files of the given sizes (bytes) imported as one experiment; returns their hashes by name.
    function New-Run([string] $Run, [hashtable] $Sizes, [int] $Seed = 1) {
        $src = Join-Path $TestDrive "src-$Run"
        New-Item -ItemType Directory -Force -Path $src | Out-Null
        $rnd = [Random]::new($Seed)
        $hashes = @{}
        foreach ($name in $Sizes.Keys) {
            $bytes = [byte[]]::new($Sizes[$name]); $rnd.NextBytes($bytes)
            [IO.File]::WriteAllBytes((Join-Path $src $name), $bytes)
            $hashes[$name] = Get-Sha256 (Join-Path $src $name)
        }
        Import-GridArtifact -Path $src -Run $Run | Out-Null
        $hashes
    }

    # A child pwsh running $Command with the module imported, not waited for.
    function Start-ChildPwsh([string] $Command, [hashtable] $Environment = @{}) {
        $exe = [Environment]::ProcessPath
        $psi = [Diagnostics.ProcessStartInfo]::new($exe)
        if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $psi.ArgumentList.Add((Join-Path $PSHOME 'pwsh.dll')) }
        foreach ($a in '-NoProfile', '-NonInteractive', '-Command', "Import-Module '$ModulePath'; $Command") { $psi.ArgumentList.Add($a) }
        foreach ($k in $Environment.Keys) { $psi.Environment[$k] = $Environment[$k] }
        $psi.RedirectStandardOutput = $true
        $psi.RedirectStandardError = $true
        [Diagnostics.Process]::Start($psi)
    }
}

AfterAll {
    Remove-Module GridArtifacts -ErrorAction Ignore
    Remove-Item Env:GRID_STORE, Env:GRID_CONFIG_HOME -ErrorAction Ignore
}

Describe 'Save-GridArtifact killed mid-download' {
    It 'is resumed by the next call from the ranges already on disk, and ends byte-exact' -Skip:$IsWindows {
        $hashes = New-Run -Run 'killed-save' -Sizes @{ 'model.ckpt' = 48MB } -Seed 5
        $dest = Join-Path $TestDrive 'killed-dest'
        # The part file and its state are in the destination's own folder, named by a hash of the path.
        $partial = Join-Path $dest '.grid-partial'
        # 8 MB/s: the 48 MB (three 16 MiB ranges) would take six seconds; it is killed once a range is recorded.
        $child = Start-ChildPwsh "Set-GridTransferOption -BandwidthLimit 8MB; Save-GridArtifact killed-save -Destination '$dest'" @{ GRID_STORE = $env:GRID_STORE }
        $deadline = (Get-Date).AddSeconds(60)
        $done = 0
        while ($done -lt 1) {
            if ((Get-Date) -gt $deadline -or $child.HasExited) { throw "No range was recorded before the kill (exited: $($child.HasExited)) $($child.StandardError.ReadToEnd())" }
            Start-Sleep -Milliseconds 100
            $state = Get-ChildItem -Force $partial -Filter '*.part.json' -ErrorAction Ignore | Select-Object -First 1
            try { $done = @((Get-Content -Raw $state.FullName -ErrorAction Stop | ConvertFrom-Json).done).Count } catch { $done = 0 }
        }
        $child.Kill($true) # SIGKILL
        $child.WaitForExit()
        $child.ExitCode | Should -Be 137
        $part = $state.FullName -replace '\.json$', ''
        $part | Should -Exist
        $state.FullName | Should -Exist
        @(Get-ChildItem -Force (Join-Path $dest 'killed-save/exp0')).Count | Should -Be 0   # nothing at the final path, nothing beside it
        $recorded = @((Get-Content -Raw $state.FullName | ConvertFrom-Json).done).Count
        $recorded | Should -BeGreaterThan 0
        $recorded | Should -BeLessThan 3

        $saved = Save-GridArtifact killed-save -Destination $dest -PassThru
        $saved.Action | Should -Be 'Downloaded'
        Get-Sha256 $saved.LocalPath | Should -Be $hashes['model.ckpt']
        @(Get-ChildItem $dest -Recurse -Force -Filter '*.part*').Count | Should -Be 0
        $partial | Should -Not -Exist
        Write-Host "killed after $recorded of 3 ranges were recorded; the next call read the other $(3 - $recorded) and ended byte-exact"
    }
}

Describe 'A full or read-only destination' {
    BeforeAll {
        $script:Mounts = @()
        $script:MountProblem = if ($IsLinux) { $null } else { 'a small tmpfs is mounted only on Linux' }
        # Small file systems of their own: 8 MiB, 64 KiB (16 pages: a file of any size takes one) and a read-only one.
        foreach ($m in @(@{ Name = 'full'; Options = 'size=8m' }, @{ Name = 'small'; Options = 'size=64k' }, @{ Name = 'read-only'; Options = 'ro,size=64k' })) {
            $path = Join-Path $TestDrive $m.Name
            New-Item -ItemType Directory -Path $path | Out-Null
            Set-Variable -Scope Script -Name ($m.Name -replace '-', '') -Value $path
            if ($MountProblem) { continue }
            $out = & mount -t tmpfs -o $m.Options tmpfs $path 2>&1
            if ($LASTEXITCODE -eq 0) { $script:Mounts += $path } else { $script:MountProblem = "mount -t tmpfs failed ($out); this needs root or CAP_SYS_ADMIN" }
        }
    }
    AfterAll {
        foreach ($m in $Mounts) { & umount $m }
    }

    It 'refuses artifacts that cannot fit with one DestinationDiskFull error, before anything is written, and damages nothing there' {
        if ($MountProblem) { Set-ItResult -Skipped -Because $MountProblem; return }
        $null = New-Run -Run 'full-run' -Sizes @{ 'small.txt' = 100KB; 'mid.bin' = 12MB; 'big.bin' = 40MB } -Seed 9
        $keep = Join-Path $full 'keep.bin'
        $bytes = [byte[]]::new(1MB); [Random]::new(3).NextBytes($bytes); [IO.File]::WriteAllBytes($keep, $bytes)
        $keepHash = Get-Sha256 $keep
        $err = @(try { Save-GridArtifact full-run -Destination $full -PassThru -ErrorVariable all -ErrorAction SilentlyContinue } catch { $_ })
        $err.Count | Should -Be 1
        @($all).Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'DestinationDiskFull,*'
        $err[0].CategoryInfo.Category | Should -Be 'WriteError'
        $err[0].Exception.Message | Should -BeLike "*'$full'*free*"
        Get-Sha256 $keep | Should -Be $keepHash
        @(Get-ChildItem $full -Recurse -Force -File).Name | Should -Be @('keep.bin')
        Write-Host "8 MiB disk, 52 MiB to save: $($err[0].Exception.Message)"
    }

    It 'stops at the first file that finds the disk full: one error, and every file saved before it is whole' {
        if ($MountProblem) { Set-ItResult -Skipped -Because $MountProblem; return }
        $sizes = @{}
        foreach ($i in 1..100) { $sizes["f$i.txt"] = 100 }
        $hashes = New-Run -Run 'fills-run' -Sizes $sizes -Seed 5
        $stopped = $null
        try { Save-GridArtifact fills-run -Destination $small -PassThru -OutVariable saved -ErrorVariable all -ErrorAction SilentlyContinue | Out-Null } catch { $stopped = $_ }
        $stopped.FullyQualifiedErrorId | Should -BeLike 'DestinationDiskFull,*'
        $stopped.Exception.Message | Should -BeLike "*'$small'*"
        @($all).Count | Should -Be 1
        @($saved).Count | Should -BeGreaterThan 0
        @($saved).Count | Should -BeLessThan 100
        foreach ($s in $saved) { Get-Sha256 $s.LocalPath | Should -Be $hashes[$s.Artifact.Path] }
        # What is on the disk is exactly what was saved: no part file, nothing half-written.
        @(Get-ChildItem $small -Recurse -Force -File).FullName | Sort-Object | Should -Be @($saved.LocalPath | Sort-Object)
        Write-Host "64 KiB disk, 100 files: $(@($saved).Count) saved, then $($stopped.Exception.Message)"
    }

    It 'refuses a read-only destination with one DestinationNotWritable error naming it and why' {
        if ($MountProblem) { Set-ItResult -Skipped -Because $MountProblem; return }
        $sizes = @{}
        foreach ($i in 1..30) { $sizes["r$i.txt"] = 100 }
        $null = New-Run -Run 'ro-run' -Sizes $sizes -Seed 6
        foreach ($dest in $readonly, (Join-Path $readonly 'below')) {
            $err = @(try { Save-GridArtifact ro-run -Destination $dest -ErrorVariable all -ErrorAction SilentlyContinue } catch { $_ })
            $err.Count | Should -Be 1
            @($all).Count | Should -Be 1
            $err[0].FullyQualifiedErrorId | Should -BeLike 'DestinationNotWritable,*'
            $err[0].CategoryInfo.Category | Should -Be 'WriteError'
            $err[0].Exception.Message | Should -BeLike "*'$dest'*Read-only file system*"
        }
    }
}

Describe 'Two Save-GridArtifact processes into one destination' {
    It 'both finish without an error and every file is byte-exact, with no part file left' {
        $sizes = @{}
        foreach ($i in 1..8) { $sizes["f$i.bin"] = $i * 700KB }
        $sizes['big.bin'] = 40MB
        $hashes = New-Run -Run 'twice-run' -Sizes $sizes -Seed 21
        $dest = Join-Path $TestDrive 'twice-dest'
        $command = "Set-GridTransferOption -BandwidthLimit 30MB; `$r = Save-GridArtifact twice-run -Destination '$dest' -PassThru -ErrorVariable e -ErrorAction SilentlyContinue; 'saved:' + @(`$r | Where-Object Action -ne Skipped).Count; 'skipped:' + @(`$r | Where-Object Action -eq Skipped).Count; 'errors:' + `$e.Count; `$e | ForEach-Object { 'error:' + `$_ }"
        $children = 1..2 | ForEach-Object { Start-ChildPwsh $command @{ GRID_STORE = $env:GRID_STORE } }
        $outputs = foreach ($c in $children) { $o = $c.StandardOutput.ReadToEnd(); $c.WaitForExit(); $c.ExitCode | Should -Be 0; $o }
        foreach ($o in $outputs) { $o | Should -Match 'errors:0' }
        foreach ($name in $sizes.Keys) { Get-Sha256 (Join-Path $dest "twice-run/exp0/$name") | Should -Be $hashes[$name] }
        @(Get-ChildItem $dest -Recurse -Force -Filter '*.part*').Count | Should -Be 0
        Join-Path $dest '.grid-partial' | Should -Not -Exist
        Write-Host ("two processes: " + (($outputs -replace '\s+', ' ') -join ' | '))
    }
}

Describe 'Secrets' {
    BeforeAll {
        $script:Endpoint = $env:GRID_TEST_S3_ENDPOINT
        $script:S3 = (New-TestS3Store secrets)
        $src = Join-Path $TestDrive 'secret-src'
        New-Item -ItemType Directory -Force -Path $src | Out-Null
        Set-Content (Join-Path $src 'metrics.csv') 'epoch,loss'
        Import-GridArtifact -Path $src -Run 'secret-run' -Store $S3 | Out-Null
        Import-GridArtifact -Path $src -Run 'secret-run' | Out-Null
        # Every stream, with verbose and debug on, then every error in full (Get-Error and the detailed view).
        $script:Tail = "; `$ErrorView = 'DetailedView'; `$Error | ForEach-Object { `$_ | Out-String -Width 500; `$_ | Get-Error | Out-String -Width 500; `$_.Exception | Format-List * -Force | Out-String -Width 500 }"
        function script:Invoke-Everything([string] $Body, [hashtable] $Environment) {
            $command = "Import-Module '$ModulePath'; `$DebugPreference = 'Continue'; `$VerbosePreference = 'Continue'; & { $Body } *>&1 | Out-String -Width 500$Tail"
            (Invoke-ChildPwsh $command $Environment) -join "`n"
        }
    }

    It 'no access key, secret key or session token in any stream or error, when the credentials work' {
        $secret = 'SecretKeyMustNotPrint/7f3c9a1e5b2d4c6e8a0b'
        $token = 'SessionTokenMustNotPrint+Qz9WmX4kPr7Tn2Lv5Hs8Jd1Fg6'
        $out = Invoke-Everything @"
Get-GridRun -Store '$S3' -Verbose -Debug
Get-GridArtifact secret-run -Store '$S3' -Verbose -Debug
Save-GridArtifact secret-run -Store '$S3' -Destination '$TestDrive/secret-dest' -PassThru -Verbose -Debug
`$links = New-GridArtifactLink secret-run -Store '$S3' -Verbose -Debug; 'links made: ' + @(`$links).Count
Get-GridRun no-such-run -Store '$S3' -Verbose -Debug
Get-GridRun -Store 's3://no-such-bucket-for-secrets?endpoint=$([uri]::EscapeDataString($Endpoint))' -Verbose -Debug
Invoke-GridExperiment -Run secret-run -Experiment exp1 -Store '$S3' -WorkingDirectory '$TestDrive/secret-work' -Verbose -Debug -- bash -c 'echo ok > ok.txt'
"@ @{ AWS_ACCESS_KEY_ID = 'S3RVER'; AWS_SECRET_ACCESS_KEY = $secret; AWS_SESSION_TOKEN = $token }
        $out | Should -Match 'links made: 1'
        $out | Should -Match 'RunNotFound'
        $out | Should -Match 'BucketNotFound'
        $out | Should -Match 'secret-run-exp1'
        $out | Should -Not -Match ([regex]::Escape($secret))
        $out | Should -Not -Match ([regex]::Escape($token))
        $out | Should -Not -Match ([regex]::Escape([uri]::EscapeDataString($token)))
    }

    It 'no access key or secret key in any stream or error, when the server rejects the credentials' {
        $key = 'AKIAFAKEKEYMUSTNOTPRINT7'
        $secret = 'RejectedSecretMustNotPrint/2b4d6f8h0j'
        $out = Invoke-Everything @"
Get-GridRun -Store '$S3' -Verbose -Debug
Save-GridArtifact secret-run -Store '$S3' -Destination '$TestDrive/rejected-dest' -Verbose -Debug
Invoke-GridExperiment -Run secret-run -Experiment exp2 -Store '$S3' -WorkingDirectory '$TestDrive/rejected-work' -Verbose -Debug -- bash -c 'echo no > no.txt'
"@ @{ AWS_ACCESS_KEY_ID = $key; AWS_SECRET_ACCESS_KEY = $secret; AWS_SESSION_TOKEN = $null }
        $out | Should -Match 'InvalidCredentials'
        $out | Should -Not -Match $key
        $out | Should -Not -Match ([regex]::Escape($secret))
    }

    It 'never the folder store''s link secret, whatever is asked' {
        $store = $env:GRID_STORE
        $out = Invoke-Everything @"
`$server = Start-GridArtifactServer -Verbose -Debug
`$link = New-GridArtifactLink secret-run -Verbose -Debug
`$bytes = (Invoke-WebRequest `$link.Url -Verbose -Debug).Content; 'fetched ' + `$bytes.Length
New-GridArtifactLink secret-run -Expiry 0 -Verbose -Debug
New-GridArtifactLink no-such-run -Verbose -Debug
try { Invoke-WebRequest (`$link.Url.ToString() -replace 's=[0-9a-f]+', 's=00') -Verbose -Debug } catch { 'refused: ' + `$_.Exception.Response.StatusCode }
Stop-GridArtifactServer -Verbose -Debug
"@ @{ GRID_STORE = $store }
        $out | Should -Match 'fetched'
        $out | Should -Match 'refused: Forbidden'
        $out | Should -Match 'InvalidExpiry'
        $secretBytes = [IO.File]::ReadAllBytes((Join-Path $store '.link-secret'))
        $secretBytes.Length | Should -Be 32
        $out | Should -Not -Match ([Convert]::ToHexString($secretBytes))
        $out | Should -Not -Match ([regex]::Escape([Convert]::ToBase64String($secretBytes)))
    }
}
