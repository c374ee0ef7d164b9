<#
.SYNOPSIS
    Listing benchmark: Get-GridRun over 1,000 runs of 4 experiments, Get-GridArtifact over
    one experiment of 20,000 artifacts, on s3rver and on the local store; listing the 20,000 keys with
    `aws s3 ls --recursive` and `rclone ls` in the same run; and the artifacts page's API over the same data.
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Endpoint,
    [Parameter(Mandatory)] [string] $Bucket,
    [string] $ResultsPath = (Join-Path $PSScriptRoot 'results.md'),
    [int] $Runs = 5
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchCommon.ps1')
Import-Module $ModulePath

$work = Join-Path ([IO.Path]::GetTempPath()) "grid-bench-list-$([guid]::NewGuid().ToString('N'))"
$local = Join-Path $work 'store'
$peers = Get-PeerSetup $Endpoint
$aws = $peers.Aws
$peerEnv = $peers.Env

try {
    # The data set, written once as a folder store and copied to the bucket: the layouts are the same.
    Write-Host 'Writing 1,000 runs x 4 experiments and one experiment of 20,000 artifacts...'
    $created = [DateTimeOffset]::UtcNow.AddDays(-1)
    $json = @{ Depth = 5; Compress = $true }
    foreach ($r in 0..999) {
        $run = 'bench-run-{0:D4}' -f $r
        $dir = Join-Path $local "runs/$run"
        New-Item -ItemType Directory -Force -Path $dir | Out-Null
        @{ schema = 1; name = $run; created = $created.AddSeconds($r).ToString('o'); command = 'python train.py'; parameters = @{} } | ConvertTo-Json @json | Set-Content (Join-Path $dir 'run.json')
        foreach ($e in 0..3) {
            New-Item -ItemType Directory -Force -Path (Join-Path $dir "exp$e") | Out-Null
            @{ schema = 1; run = $run; experiment = "exp$e"; status = 'Succeeded'; exitCode = 0; created = $created.ToString('o'); finished = $created.AddMinutes(5).ToString('o'); parameters = @{ lr = "0.$e" } } |
                ConvertTo-Json @json | Set-Content (Join-Path $dir "exp$e/experiment.json")
        }
    }
    $big = Join-Path $local 'runs/wide-run'
    $artifacts = Join-Path $big 'exp0/artifacts'
    New-Item -ItemType Directory -Force -Path $artifacts | Out-Null
    @{ schema = 1; name = 'wide-run'; created = $created.ToString('o'); parameters = @{} } | ConvertTo-Json @json | Set-Content (Join-Path $big 'run.json')
    @{ schema = 1; run = 'wide-run'; experiment = 'exp0'; status = 'Succeeded'; exitCode = 0; created = $created.ToString('o'); parameters = @{} } | ConvertTo-Json @json | Set-Content (Join-Path $big 'exp0/experiment.json')
    $bytes = [byte[]]::new(256)
    $sha = [Convert]::ToHexString([Security.Cryptography.SHA256]::HashData($bytes)).ToLowerInvariant()
    $entries = [Collections.Generic.List[object]]::new()
    foreach ($i in 0..19999) {
        $rel = 'shard-{0:D2}/file-{1:D5}.bin' -f ($i % 50), $i
        $file = Join-Path $artifacts $rel
        if ($i -lt 50) { New-Item -ItemType Directory -Force -Path (Split-Path $file) | Out-Null }
        [IO.File]::WriteAllBytes($file, $bytes)
        $entries.Add(@{ path = $rel; size = 256; sha256 = $sha; modified = $created.ToString('o') })
    }
    @{ schema = 1; run = 'wide-run'; experiment = 'exp0'; sealed = $true; updated = $created.ToString('o'); artifacts = $entries } | ConvertTo-Json -Depth 5 -Compress | Set-Content (Join-Path $big 'exp0/manifest.json')

    Write-Host 'Copying it to the bucket (aws s3 cp --recursive)...'
    $null = Invoke-Peer $aws @('s3', 'cp', '--recursive', '--only-show-errors', '--endpoint-url', $Endpoint, $local, "s3://$Bucket/listing") $peerEnv
    $s3 = "s3://$Bucket/listing?endpoint=$([uri]::EscapeDataString($Endpoint))"

    # Correctness first: every figure below is for a complete listing.
    $runCount = @(Get-GridRun -Store $s3).Count
    $artifactCount = @(Get-GridArtifact wide-run-exp0 -Store $s3).Count
    if ($runCount -ne 1001 -or $artifactCount -ne 20000) { throw "Incomplete listing: $runCount runs, $artifactCount artifacts." }
    $awsCount = (Invoke-Peer $aws @('s3', 'ls', '--recursive', '--endpoint-url', $Endpoint, "s3://$Bucket/listing/runs/wide-run/exp0/artifacts/") $peerEnv).Split("`n", [StringSplitOptions]::RemoveEmptyEntries).Count
    $rcloneCount = (Invoke-Peer 'rclone' @('ls', "s3rver:$Bucket/listing/runs/wide-run/exp0/artifacts") $peerEnv).Split("`n", [StringSplitOptions]::RemoveEmptyEntries).Count
    if ($awsCount -ne 20000 -or $rcloneCount -ne 20000) { throw "Peers listed $awsCount and $rcloneCount keys." }

    Write-Host 'Timing...'
    $rows = [ordered]@{}
    $rows['Get-GridRun, 1,000 runs x 4 experiments, s3rver'] = Measure-Median { Get-GridRun -Store $s3 } -Runs $Runs
    $rows['Get-GridRun, 1,000 runs x 4 experiments, local store'] = Measure-Median { Get-GridRun -Store $local } -Runs $Runs
    $rows['Get-GridArtifact, 20,000 artifacts, s3rver'] = Measure-Median { Get-GridArtifact wide-run-exp0 -Store $s3 } -Runs $Runs
    $rows['Get-GridArtifact, 20,000 artifacts, local store'] = Measure-Median { Get-GridArtifact wide-run-exp0 -Store $local } -Runs $Runs
    $rows['aws s3 ls --recursive, 20,000 keys, s3rver'] = Measure-Median { Invoke-Peer $aws @('s3', 'ls', '--recursive', '--endpoint-url', $Endpoint, "s3://$Bucket/listing/runs/wide-run/exp0/artifacts/") $peerEnv } -Runs $Runs
    $rows['rclone ls, 20,000 keys, s3rver'] = Measure-Median { Invoke-Peer 'rclone' @('ls', "s3rver:$Bucket/listing/runs/wide-run/exp0/artifacts") $peerEnv } -Runs $Runs

    # The artifacts page reads the same listings through its JSON API (what the browser waits for).
    foreach ($store in @(@{ Name = 's3rver'; Uri = $s3 }, @{ Name = 'local store'; Uri = $local })) {
        $server = Start-GridArtifactServer -Store $store.Uri
        $handler = [Net.Http.HttpClientHandler]::new()
        $client = [Net.Http.HttpClient]::new($handler)
        $null = $client.GetAsync($server.PageUrl).GetAwaiter().GetResult()   # trades the token for the cookie
        $get = { param($path) $r = $client.GetAsync([uri]::new($server.Url, $path)).GetAwaiter().GetResult(); $r.EnsureSuccessStatusCode() | Out-Null; $r.Content.ReadAsStringAsync().GetAwaiter().GetResult() }
        $listed = (& $get 'api/runs' | ConvertFrom-Json).runs.Count
        $wide = (& $get 'api/artifacts?run=wide-run&exp=exp0' | ConvertFrom-Json).artifacts.Count
        if ($listed -ne 1001 -or $wide -ne 20000) { throw "The page's API listed $listed runs and $wide artifacts." }
        $rows["artifacts page: runs list, first load or Refresh (1,001 runs), $($store.Name)"] = Measure-Median { & $get 'api/runs?fresh=1' } -Runs $Runs
        $rows["artifacts page: runs list, finished runs known (1,001 runs), $($store.Name)"] = Measure-Median { & $get 'api/runs' } -Runs $Runs
        $rows["artifacts page: artifact list (20,000), $($store.Name)"] = Measure-Median { & $get 'api/artifacts?run=wide-run&exp=exp0' } -Runs $Runs
        $client.Dispose()
        Stop-GridArtifactServer -Store $store.Uri
    }

    $ours = $rows['Get-GridArtifact, 20,000 artifacts, s3rver'].Median
    $lines = @('| what | median | runs (s) | vs Get-GridArtifact on s3rver |', '|---|---:|---|---:|')
    foreach ($k in $rows.Keys) {
        $m = $rows[$k].Median
        $lines += "| $k | $(Format-Seconds $m) | $(($rows[$k].Times | ForEach-Object { '{0:0.00}' -f $_ }) -join ', ') | $('{0:0.00}x' -f ($m / $ours)) |"
    }
    $lines += ''
    $lines += "Measured $(Get-Date -Format 'yyyy-MM-dd') with $Runs runs after a warm-up. Our cmdlets are timed inside one pwsh session (module loaded, store client warm); aws and rclone are timed as whole processes, start-up included, which is how each is used. Get-GridRun makes 6,001 requests (1 listing, then 1,000 run records, 1,000 experiment listings and 4,000 experiment records, read concurrently): about 1,000 requests a second, which is what s3rver serves of small GETs on this machine, so the figure is server-bound. Get-GridArtifact pages through the 20,000 keys (1,000 a page, one after another, as S3 requires) and joins the manifest. The artifacts page rows time the page's JSON API over HTTP on loopback, as the browser waits for it: the same catalog reads plus JSON. A first load (or Refresh) reads every run; after that the server reads only runs it has not yet seen finished, so the list costs one listing of run names."
    Write-ResultsSection -Path $ResultsPath -Title 'Listing (the S3 store)' -Body ($lines -join "`n")
    Write-Host ($lines -join "`n")
}
finally {
    Remove-Item -Recurse -Force $work -ErrorAction Ignore
}
