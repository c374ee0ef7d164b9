#Requires -Version 7.4
<#
.SYNOPSIS
    A store for the browser tests, and its artifacts page, kept up until stdin closes.
.DESCRIPTION
    Fills a fresh store (a temporary folder, or a prefix in the test bucket of the S3-compatible
    server whose endpoint is in GRID_TEST_S3_ENDPOINT), starts the module's artifact server for
    it, and prints one JSON line with the page's address and the SHA-256 of every artifact it
    wrote. It keeps serving until a line arrives on stdin (or stdin closes), then stops the
    active run and the server and removes the folder.

    -Kind large fills a folder store with 1,000 runs and one experiment of 20,000 artifacts.
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [ValidateSet('local', 's3', 'large')] [string] $Kind = 'local'
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
$work = Join-Path ([IO.Path]::GetTempPath()) "grid-page-$Kind-$([guid]::NewGuid().ToString('N'))"
$env:GRID_CONFIG_HOME = Join-Path $work 'config'
$store = if ($Kind -eq 's3') {
    "s3://$($env:GRID_TEST_S3_BUCKET)/page-$([guid]::NewGuid().ToString('N'))?endpoint=$([uri]::EscapeDataString($env:GRID_TEST_S3_ENDPOINT))"
} else { Join-Path $work 'store' }
$hashes = [ordered]@{}
$stopFile = $null

function New-Png([int] $Width, [int] $Height, [scriptblock] $Color) {
    # A real PNG (8-bit RGB), made here so the tests need no image files or libraries.
    $crcTable = [long[]]::new(256)
    for ($n = 0; $n -lt 256; $n++) {
        $c = [long]$n
        for ($k = 0; $k -lt 8; $k++) { $c = if ($c -band 1) { 0xEDB88320L -bxor ($c -shr 1) } else { $c -shr 1 } }
        $crcTable[$n] = $c
    }
    $chunk = {
        param([string] $Type, [byte[]] $Data)
        $body = [Text.Encoding]::ASCII.GetBytes($Type) + $Data
        $crc = 0xFFFFFFFFL
        foreach ($b in $body) { $crc = $crcTable[($crc -bxor $b) -band 0xFF] -bxor ($crc -shr 8) }
        $crc = $crc -bxor 0xFFFFFFFFL
        $len = [BitConverter]::GetBytes([uint32]$Data.Length); [Array]::Reverse($len)
        $crcBytes = [BitConverter]::GetBytes([uint32]$crc); [Array]::Reverse($crcBytes)
        $len + $body + $crcBytes
    }
    $raw = [IO.MemoryStream]::new()
    for ($y = 0; $y -lt $Height; $y++) {
        $raw.WriteByte(0)
        for ($x = 0; $x -lt $Width; $x++) { $rgb = & $Color $x $y; $raw.Write([byte[]]$rgb, 0, 3) }
    }
    $packed = [IO.MemoryStream]::new()
    $z = [IO.Compression.ZLibStream]::new($packed, [IO.Compression.CompressionLevel]::Optimal, $true)
    $z.Write($raw.ToArray(), 0, [int]$raw.Length); $z.Dispose()
    $w = [BitConverter]::GetBytes([uint32]$Width); [Array]::Reverse($w)
    $h = [BitConverter]::GetBytes([uint32]$Height); [Array]::Reverse($h)
    [byte[]](0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A) + (& $chunk 'IHDR' ($w + $h + [byte[]](8, 2, 0, 0, 0))) + (& $chunk 'IDAT' $packed.ToArray()) + (& $chunk 'IEND' ([byte[]]@()))
}

function Write-Artifact([string] $Root, [string] $Run, [string] $Experiment, [string] $Path, [byte[]] $Bytes) {
    $file = Join-Path $Root $Path
    New-Item -ItemType Directory -Force -Path (Split-Path $file) | Out-Null
    [IO.File]::WriteAllBytes($file, $Bytes)
    $hashes["$Run/$Experiment/$Path"] = [Convert]::ToHexString([Security.Cryptography.SHA256]::HashData($Bytes)).ToLowerInvariant()
}

if ($Kind -eq 'large') {
    # 1,000 runs, then one experiment of 20,000 artifacts: the page must stay usable.
    $one = Join-Path $work 'one'
    Write-Artifact $one 'x' 'x' 'metrics.csv' ([Text.Encoding]::UTF8.GetBytes("step,loss`n1,0.5`n"))
    for ($i = 0; $i -lt 1000; $i++) { Import-GridArtifact -Path $one -Run ('sweep-{0:d4}' -f $i) -Store $store | Out-Null }
    $many = Join-Path $work 'many'
    for ($i = 0; $i -lt 20000; $i++) {
        $dir = Join-Path $many ('shard-{0:d2}' -f ($i % 100))
        if ($i -lt 100) { New-Item -ItemType Directory -Force -Path $dir | Out-Null }
        [IO.File]::WriteAllText((Join-Path $dir ('f-{0:d5}.txt' -f $i)), "artifact $i`n")
    }
    Import-GridArtifact -Path $many -Run 'big-run' -Store $store -ThrottleLimit 16 | Out-Null
    $hashes.Clear()
}
else {
    $exp0 = Join-Path $work 'exp0'
    $exp1 = Join-Path $work 'exp1'
    $exp2 = Join-Path $work 'exp2'
    $older = Join-Path $work 'older'
    # The oldest run: its script wrote a file and failed (exit 3). The page shows how it ended.
    $crashed = Join-Path $work 'crashed'
    New-Item -ItemType Directory -Force -Path $crashed | Out-Null
    Invoke-GridExperiment -Run 'crashed-run' -Store $store -WorkingDirectory $crashed -- bash -c 'echo partial > partial.txt; exit 3' | Out-Null
    $hashes['crashed-run/exp0/partial.txt'] = [Convert]::ToHexString([Security.Cryptography.SHA256]::HashData([Text.Encoding]::UTF8.GetBytes("partial`n"))).ToLowerInvariant()
    Start-Sleep -Milliseconds 50
    # Then a metrics.csv whose column name and cell are markup. The page must show them as text.
    $hostile = Join-Path $work 'hostile'
    Write-Artifact $hostile 'hostile-run' 'exp0' 'metrics.csv' ([Text.Encoding]::UTF8.GetBytes(
        "step,<img src=x onerror=fetch('/pwned')>,note`n1,0.5,<script>fetch('/pwned')</script>`n2,0.4,`n3,0.3,`n"))
    Import-GridArtifact -Path $hostile -Run 'hostile-run' -Store $store | Out-Null
    Start-Sleep -Milliseconds 50
    Write-Artifact $older 'older-run' 'exp0' 'notes.txt' ([Text.Encoding]::UTF8.GetBytes("an older run`n"))
    # Names outside the Basic Multilingual Plane, with right-to-left text and a joiner, and one name in NFC and NFD.
    foreach ($name in "loss-$([char]::ConvertFromUtf32(0x1F4C9)).txt", "$([char]::ConvertFromUtf32(0x1D6FC))-$([char]::ConvertFromUtf32(0x2000B))/$([char]0x05E9)$([char]0x05DC)$([char]0x05D5)$([char]0x05DD) $([char]::ConvertFromUtf32(0x1F469))$([char]0x200D)$([char]::ConvertFromUtf32(0x1F4BB)).csv",
                     "r$([char]0xE9)sum$([char]0xE9).txt", "re$([char]0x301)sume$([char]0x301).txt") {
        Write-Artifact $older 'older-run' 'exp0' $name ([Text.Encoding]::UTF8.GetBytes("bytes of $name`n"))
    }
    Import-GridArtifact -Path $older -Run 'older-run' -Store $store | Out-Null
    Protect-GridRun older-run -Store $store
    Start-Sleep -Milliseconds 50

    $model = [byte[]]::new(3MB + 17); [Random]::new(7).NextBytes($model)
    Write-Artifact $exp0 'vision-sweep' 'exp0' 'checkpoints/model.ckpt' $model
    Write-Artifact $exp0 'vision-sweep' 'exp0' 'plots/loss.png' (New-Png 96 64 { param($x, $y) (255 - 2 * $y), (80 + $x), 200 })
    Write-Artifact $exp0 'vision-sweep' 'exp0' 'plots/evil.svg' ([Text.Encoding]::UTF8.GetBytes(
        '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" onload="alert(''svg-onload'')">' +
        '<script>alert("svg-script"); fetch("/pwned"); document.title = "pwned";</script>' +
        '<rect width="40" height="40" fill="#c33"/></svg>'))
    Write-Artifact $exp0 'vision-sweep' 'exp0' 'metrics.csv' ([Text.Encoding]::UTF8.GetBytes("epoch,loss,accuracy`n1,0.93,0.61`n2,0.52,0.78`n3,""0.31"",0.88`n"))
    Write-Artifact $exp0 'vision-sweep' 'exp0' 'train.log' ([Text.Encoding]::UTF8.GetBytes((1..300 | ForEach-Object { "epoch $_ <b>done</b>" }) -join "`n"))
    Write-Artifact $exp0 'vision-sweep' 'exp0' 'report.html' ([Text.Encoding]::UTF8.GetBytes('<script>fetch("/pwned")</script>'))
    $weights = [byte[]]::new(200000); [Random]::new(8).NextBytes($weights)
    Write-Artifact $exp1 'vision-sweep' 'exp1' 'checkpoints/model.ckpt' $weights
    Write-Artifact $exp1 'vision-sweep' 'exp1' 'plots/loss.png' (New-Png 96 64 { param($x, $y) 40, (255 - 2 * $x), (60 + 2 * $y) })
    # Lightning's CSVLogger: train_loss every 10 steps, val_loss only at each epoch's end (sparse). Written
    # after exp0's top-level metrics.csv, so it is the newer one the metrics come from. Final val_loss:
    # exp0 0.3, exp1 0.275, exp2 0.325.
    foreach ($e in @(@{ Root = $exp0; Name = 'exp0'; Scale = 0.8 }, @{ Root = $exp1; Name = 'exp1'; Scale = 0.6 }, @{ Root = $exp2; Name = 'exp2'; Scale = 1.0 })) {
        $lines = [Collections.Generic.List[string]]::new()
        $lines.Add('epoch,step,train_loss,val_loss')
        $row = { param($format) $lines.Add([string]::Format([cultureinfo]::InvariantCulture, $format, $args)) }
        for ($epoch = 0; $epoch -lt 4; $epoch++) {
            foreach ($step in (20 * $epoch + 9), (20 * $epoch + 19)) { & $row '{0},{1},{2:0.###},' $epoch $step (0.15 + $e.Scale * [math]::Pow(0.97, $step)) }
            & $row '{0},{1},,{2:0.###}' $epoch (20 * $epoch + 19) (0.2 + $e.Scale * [math]::Pow(0.5, $epoch))
        }
        Write-Artifact $e.Root 'vision-sweep' $e.Name 'lightning_logs/version_0/metrics.csv' ([Text.Encoding]::UTF8.GetBytes(($lines -join "`n") + "`n"))
        # Beside it, as Lightning writes them, the hyperparameters: a short text file.
        Write-Artifact $e.Root 'vision-sweep' $e.Name 'lightning_logs/version_0/hparams.yaml' ([Text.Encoding]::UTF8.GetBytes("model: resnet18`nscale: $($e.Scale)`n"))
    }
    # batch: 8 < 16 < 128 as numbers, but "128" < "16" < "8" as text. exp2 has no lr: it sorts last either way.
    Import-GridArtifact -Path $exp0 -Run 'vision-sweep' -Experiment exp0 -Store $store -Parameter @{ lr = 0.1; batch = 8 } | Out-Null
    Import-GridArtifact -Path $exp1 -Run 'vision-sweep' -Experiment exp1 -Store $store -Parameter @{ lr = 0.01; batch = 16 } | Out-Null
    Import-GridArtifact -Path $exp2 -Run 'vision-sweep' -Experiment exp2 -Store $store -Parameter @{ batch = 128 } | Out-Null
    Add-GridTag vision-sweep keep -Store $store
    # One run still going until the test creates $stopFile: active runs are listed apart from finished ones.
    $stopFile = Join-Path $work 'stop-live-run'
    Start-GridRun -Name 'live-run' -Command "while [ ! -e '$stopFile' ]; do sleep 0.2; done" -Store $store -WorkingRoot (Join-Path $work 'work') | Out-Null
}

$server = Start-GridArtifactServer -Store $store
[Console]::Out.WriteLine((@{ pageUrl = $server.PageUrl.AbsoluteUri; baseUrl = $server.Url.AbsoluteUri; store = $store; hashes = $hashes; stopFile = $stopFile } | ConvertTo-Json -Compress -Depth 4))
[Console]::Out.Flush()
try { [Console]::In.ReadLine() | Out-Null }
finally {
    if ($stopFile) {
        New-Item -ItemType File -Force -Path $stopFile | Out-Null
        Stop-GridRun -Run 'live-run' -Store $store -ErrorAction Ignore | Out-Null
    }
    Stop-GridArtifactServer -Store $store -ErrorAction Continue
    Remove-Item -Recurse -Force $work -ErrorAction Continue
}
