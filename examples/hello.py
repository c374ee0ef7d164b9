"""A small "training" script, like the product page's hello.py: writes artifacts into several folders.
Start-GridRun passes sweep parameters as --name value."""
import argparse, os, random, time

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.01)
parser.add_argument("--epochs", type=int, default=3)
args = parser.parse_args()
for d in ("checkpoints", "logs", "plots/loss"):
    os.makedirs(d, exist_ok=True)
rnd = random.Random(int(args.lr * 1000))
with open("metrics.csv", "w") as m:
    m.write("epoch,loss\n")
    for epoch in range(1, args.epochs + 1):
        loss = round(1 / (epoch * (1 + 10 * args.lr)), 4)
        m.write(f"{epoch},{loss}\n")
        with open(f"checkpoints/epoch={epoch}.ckpt", "wb") as f:
            f.write(bytes(rnd.getrandbits(8) for _ in range(128 * 1024)))
        with open("logs/train.log", "a") as log:
            log.write(f"epoch {epoch} lr={args.lr} loss={loss}\n")
        print(f"epoch {epoch}: loss {loss}", flush=True)
        time.sleep(0.3)
with open("plots/loss/curve.svg", "w") as f:
    f.write('<svg xmlns="http://www.w3.org/2000/svg"><text>loss</text></svg>\n')
