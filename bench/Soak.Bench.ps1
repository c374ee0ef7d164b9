<#
.SYNOPSIS
    Soak: 100,000 small artifacts captured by one agent, listed, and downloaded, on the folder store
    (and, with -S3Count, on s3rver); the agent's and the downloader's memory sampled twice a second
    for the whole run; every downloaded file compared with its source by SHA-256.
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Endpoint,
    [Parameter(Mandatory)] [string] $Bucket,
    [string] $ResultsPath = (Join-Path $PSScriptRoot 'results.md'),
    [int] $Count = 100000,
    # Artifacts on s3rver (0 skips it): a single-threaded server takes several minutes per 100,000 requests.
    [int] $S3Count = 20000,
    # How long the script goes on once every file is written: the agent's steady state, sampled alone.
    [int] $SteadySeconds = 90
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchCommon.ps1')
$work = Join-Path ([IO.Path]::GetTempPath()) "grid-bench-soak-$([guid]::NewGuid().ToString('N'))"
New-Item -ItemType Directory -Path $work | Out-Null

function Invoke-Sampled {
    <# Runs $Command in a fresh pwsh with the module and samples its resident memory every 500 ms.
       Returns the seconds it took, its output, and the samples in MiB. #>
    param([string] $Command, [string] $Marker, [hashtable] $Environment = @{})
    $exe = [Environment]::ProcessPath
    $psi = [Diagnostics.ProcessStartInfo]::new($exe)
    if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $psi.ArgumentList.Add((Join-Path $PSHOME 'pwsh.dll')) }
    foreach ($a in '-NoProfile', '-NonInteractive', '-Command', "`$ErrorActionPreference = 'Stop'; Import-Module '$ModulePath'; $Command") { $psi.ArgumentList.Add($a) }
    foreach ($k in $Environment.Keys) { $psi.Environment[$k] = $Environment[$k] }
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $p = [Diagnostics.Process]::Start($psi)
    $stdout = $p.StandardOutput.ReadToEndAsync()
    $stderr = $p.StandardError.ReadToEndAsync()
    $samples = [Collections.Generic.List[double]]::new()
    $steady = [Collections.Generic.List[double]]::new()
    while (-not $p.HasExited) {
        try {
            $rss = (Get-Content "/proc/$($p.Id)/status" -ErrorAction Stop | Where-Object { $_ -like 'VmRSS:*' }) -replace '\D', ''
            # Samples taken once the marker exists (every file written) are the steady state.
            if ($rss) { if ($Marker -and (Test-Path $Marker)) { $steady.Add([double]$rss / 1024) } else { $samples.Add([double]$rss / 1024) } }
        }
        catch { }
        Start-Sleep -Milliseconds 500
    }
    $p.WaitForExit()
    if ($p.ExitCode -ne 0) { throw "Child failed ($($p.ExitCode)): $($stderr.Result) $($stdout.Result)" }
    [pscustomobject]@{ Seconds = $sw.Elapsed.TotalSeconds; Output = $stdout.Result; Samples = $samples.ToArray(); Steady = $steady.ToArray() }
}

function Get-MemoryRow([string] $What, [double[]] $s) {
    # Flat: the mean of the last quarter of the samples against the mean of the second quarter (after start-up).
    $q = [math]::Max(1, [int][math]::Floor($s.Count / 4))
    $second = ($s[$q..([math]::Min($s.Count - 1, 2 * $q - 1))] | Measure-Object -Average).Average
    $last = ($s[($s.Count - $q)..($s.Count - 1)] | Measure-Object -Average).Average
    $trace = (0..9 | ForEach-Object { '{0:0}' -f $s[[int][math]::Floor($_ * ($s.Count - 1) / 9)] }) -join ' '
    "| $What | $($s.Count) | $('{0:0}' -f ($s | Measure-Object -Minimum).Minimum) | $('{0:0}' -f $second) | $('{0:0}' -f $last) | $('{0:0}' -f ($s | Measure-Object -Maximum).Maximum) | $('{0:+0;-0}' -f ($last - $second)) | $trace |"
}

function Get-AgentRow([string] $What, [double[]] $ramp, [double[]] $steady) {
    # While files arrive the agent's state grows with them (one entry per file); once they are all
    # written, nothing should grow: the first and second halves of the steady samples are compared.
    $h = [math]::Max(1, [int][math]::Floor($steady.Count / 2))
    $first = ($steady[0..($h - 1)] | Measure-Object -Average).Average
    $second = ($steady[$h..($steady.Count - 1)] | Measure-Object -Average).Average
    $trace = (0..9 | ForEach-Object { '{0:0}' -f $ramp[[int][math]::Floor($_ * ($ramp.Count - 1) / 9)] }) -join ' '
    $steadyTrace = (0..9 | ForEach-Object { '{0:0}' -f $steady[[int][math]::Floor($_ * ($steady.Count - 1) / 9)] }) -join ' '
    "| $What | $($ramp.Count) | $trace | $($steady.Count) | $('{0:0}' -f ($steady | Measure-Object -Minimum).Minimum) | $('{0:0}' -f ($steady | Measure-Object -Maximum).Maximum) | $('{0:0}' -f $first) | $('{0:0}' -f $second) | $('{0:+0;-0}' -f ($second - $first)) | $steadyTrace |"
}

function Invoke-Soak([string] $Label, [string] $Store, [int] $N, [hashtable] $AgentEnvironment = @{}, [switch] $CaptureOnly) {
    $run = "soak-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
    $wd = Join-Path $work "wd-$run"
    $dest = Join-Path $work "dest-$run"
    $folders = [math]::Max(1, [int][math]::Ceiling($N / 10000))
    $per = [int][math]::Ceiling($N / $folders)
    # The script writes the artifacts in rounds of up to 10,000 (one folder each, 2 KiB files),
    # a second apart, so the agent syncs while it runs and once more at the end.
    $marker = Join-Path $work "written-$run"
    $script = "set -e; n=$N; i=0; while [ `$n -gt 0 ]; do k=`$(( n < $per ? n : $per )); mkdir -p part`$i; (cd part`$i && head -c `$(( k * 2048 )) /dev/urandom | split -a 5 -d -b 2048 - f); n=`$(( n - k )); i=`$(( i + 1 )); sleep 1; done; sleep 3; touch $marker; sleep $SteadySeconds"
    Write-Host "$Label`: capturing $N artifacts..."
    $cap = Invoke-Sampled "`$e = Invoke-GridExperiment -Run '$run' -Store '$Store' -WorkingDirectory '$wd' -WarningAction SilentlyContinue -- bash -c '$script'; if (`$e.Status -ne 'Succeeded') { throw `$e.Status }; `$e.ArtifactCount" -Marker $marker -Environment $AgentEnvironment
    $captured = [int](($cap.Output.Trim() -split "`n")[-1])
    if ($captured -ne $N) { throw "$Label`: $captured of $N artifacts captured" }
    if ($CaptureOnly) { Remove-Item -Recurse -Force $wd; return [pscustomobject]@{ Label = $Label; Capture = $cap } }

    Write-Host "$Label`: listing..."
    Import-Module $ModulePath
    $list = Measure-Median { $script:listed = @(Get-GridArtifact $run -Store $Store) } -Runs 3
    if ($listed.Count -ne $N) { throw "$Label`: $($listed.Count) of $N listed" }
    $hashed = @($listed | Where-Object Sha256).Count

    Write-Host "$Label`: downloading..."
    $down = Invoke-Sampled "`$r = Save-GridArtifact '$run' -Store '$Store' -Destination '$dest' -ThrottleLimit 32 -PassThru; @(`$r).Count"
    $saved = [int](($down.Output.Trim() -split "`n")[-1])

    # Every byte, compared independently of the module: sha256sum over the source and the copy.
    $a = (& bash -c "cd '$wd' && find . -type f -print0 | sort -z | xargs -0 sha256sum") -join "`n"
    $b = (& bash -c "cd '$dest/$run/exp0' && find . -type f -print0 | sort -z | xargs -0 sha256sum") -join "`n"
    $files = ($a -split "`n").Count
    $bytes = [long](& bash -c "cd '$wd' && find . -type f -printf '%s\n' | awk '{s+=`$1} END {print s}'")
    $differ = if ($a -eq $b) { 0 } else { @(Compare-Object ($a -split "`n") ($b -split "`n")).Count }
    Remove-Item -Recurse -Force $wd, $dest
    [pscustomobject]@{
        Label = $Label; N = $N; Files = $files; Bytes = $bytes; Differ = $differ; Saved = $saved; Hashed = $hashed
        Capture = $cap; List = $list; Download = $down
    }
}

try {
    $results = @(Invoke-Soak 'folder store' (Join-Path $work 'store') $Count)
    if ($S3Count -gt 0) { $results += Invoke-Soak 's3rver' "s3://$Bucket/soak?endpoint=$([uri]::EscapeDataString($Endpoint))" $S3Count }
    # The same capture with a small first-generation budget and the collector told to give memory
    # back: what the agent holds, rather than what the collector has not yet returned.
    $gc = Invoke-Soak 'folder store, DOTNET_GCgen0size=32 MiB, DOTNET_GCConserveMemory=7' (Join-Path $work 'store-gc') $Count @{ DOTNET_GCgen0size = '0x2000000'; DOTNET_GCConserveMemory = '7' } -CaptureOnly

    $rows = @("| store | artifacts | capture (start to final status, $SteadySeconds s idle included) | list (Get-GridArtifact, median of 3) | download (Save-GridArtifact) | files compared by SHA-256 | differ / missing | bytes lost |", '|---|---:|---:|---:|---:|---:|---:|---:|')
    $agent = @("| agent | samples while files arrive | trace while files arrive (MiB, ten points) | samples once all are written ($SteadySeconds s) | min | max | first half mean | second half mean | change | trace once all are written (MiB, ten points) |", '|---|---:|---|---:|---:|---:|---:|---:|---:|---|')
    $mem = @('| downloader | samples | min | 2nd quarter mean | last quarter mean | max | last vs 2nd quarter | trace (MiB, ten points over the run) |', '|---|---:|---:|---:|---:|---:|---:|---|')
    foreach ($r in $results) {
        $rows += "| $($r.Label) | $('{0:N0}' -f $r.N) | $(Format-Seconds $r.Capture.Seconds) | $(Format-Seconds $r.List.Median) | $(Format-Seconds $r.Download.Seconds) | $('{0:N0}' -f $r.Files) ($('{0:N1}' -f ($r.Bytes / 1MB)) MiB) | $($r.Differ) | $(if ($r.Differ -eq 0 -and $r.Files -eq $r.N -and $r.Saved -eq $r.N) { 0 } else { 'see differ' }) |"
        $agent += Get-AgentRow "Invoke-GridExperiment, $($r.Label) (MiB)" $r.Capture.Samples $r.Capture.Steady
        $mem += Get-MemoryRow "Save-GridArtifact, $($r.Label) (MiB)" $r.Download.Samples
    }
    $agent += Get-AgentRow "Invoke-GridExperiment, $($gc.Label) (MiB)" $gc.Capture.Samples $gc.Capture.Steady
    $body = ($rows -join "`n") + "`n`n" + ($agent -join "`n") + "`n`n" + ($mem -join "`n") + "`n`n" +
        "One Invoke-GridExperiment in a fresh pwsh runs a script that writes the artifacts in rounds of 10,000 (2 KiB each, one folder per round, a second apart), then runs $SteadySeconds s more with every file in place; the agent syncs them while it runs and seals the manifest at the end. " +
        "Get-GridArtifact then lists them in this session, and one Save-GridArtifact (-ThrottleLimit 32) in a fresh pwsh downloads them. " +
        "Resident memory (VmRSS) of the agent's and of the downloader's process is read from /proc every 500 ms. " +
        "The comparison uses sha256sum over the script's folder and the downloaded copy, so it does not trust the module's own checks. " +
        "Measured $(Get-Date -Format 'yyyy-MM-dd')."
    Write-ResultsSection -Path $ResultsPath -Title 'Soak: 100,000 small artifacts' -Body $body
    Write-Host $body
}
finally {
    Remove-Item -Recurse -Force $work -ErrorAction Ignore
}
