# A small "training" script, like the product page's hello.py: it writes artifacts into several
# folders while it runs. Start-GridRun passes sweep parameters as -name value.
param([double] $lr = 0.01, [int] $epochs = 3)
foreach ($dir in 'checkpoints', 'logs', 'plots/loss') { New-Item -ItemType Directory -Force -Path $dir | Out-Null }
$rnd = [Random]::new([int]($lr * 1000))
"epoch,loss" | Set-Content metrics.csv
foreach ($epoch in 1..$epochs) {
    $loss = [math]::Round(1 / ($epoch * (1 + 10 * $lr)), 4)
    "$epoch,$loss" | Add-Content metrics.csv
    $weights = [byte[]]::new(128KB); $rnd.NextBytes($weights)
    [IO.File]::WriteAllBytes("checkpoints/epoch=$epoch.ckpt", $weights)
    "epoch $epoch lr=$lr loss=$loss" | Add-Content logs/train.log
    Write-Output "epoch ${epoch}: loss $loss"
    Start-Sleep -Milliseconds 300
}
'<svg xmlns="http://www.w3.org/2000/svg"><text>loss</text></svg>' | Set-Content plots/loss/curve.svg
