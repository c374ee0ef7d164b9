using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;

namespace GridArtifacts.Tests;

/// <summary>
/// A TCP relay on loopback that passes the client's bytes to the server at once and the server's
/// bytes back only after <see cref="Delay"/>, in order: a server whose answers take that long to
/// arrive, whatever they say. Each client connection gets one connection to the server, so what
/// happens on one connection (keep-alive, bytes left over) happens on the server's too.
/// </summary>
public sealed class SlowAnswerRelay : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Uri _target;
    private readonly CancellationTokenSource _stop = new();
    private int _connections;

    public SlowAnswerRelay(string target, TimeSpan delay)
    {
        _target = new Uri(target);
        Delay = delay;
        _listener.Start();
        Endpoint = $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";
        _ = Task.Run(AcceptAsync);
    }

    public string Endpoint { get; }

    /// <summary>How long the server's bytes are held; a change applies to bytes the server sends after it.</summary>
    public TimeSpan Delay
    {
        get => TimeSpan.FromTicks(Volatile.Read(ref _delayTicks));
        set => Volatile.Write(ref _delayTicks, value.Ticks);
    }
    private long _delayTicks;

    /// <summary>How many connections clients opened.</summary>
    public int Connections => Volatile.Read(ref _connections);

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            Interlocked.Increment(ref _connections);
            _ = Task.Run(() => RelayAsync(client));
        }
    }

    private async Task RelayAsync(TcpClient client)
    {
        using var _ = client;
        using var server = new TcpClient();
        try
        {
            await server.ConnectAsync(_target.Host, _target.Port, _stop.Token);
            var toServer = client.GetStream().CopyToAsync(server.GetStream(), _stop.Token);
            var answers = Channel.CreateUnbounded<(DateTime Due, byte[] Bytes)>();
            var read = Task.Run(async () =>
            {
                var buffer = new byte[64 << 10];
                int n;
                while ((n = await server.GetStream().ReadAsync(buffer, _stop.Token)) > 0) answers.Writer.TryWrite((DateTime.UtcNow + Delay, buffer[..n]));
                answers.Writer.TryComplete();
            });
            await foreach (var (due, bytes) in answers.Reader.ReadAllAsync(_stop.Token))
            {
                var wait = due - DateTime.UtcNow;
                if (wait > TimeSpan.Zero) await Task.Delay(wait, _stop.Token);
                await client.GetStream().WriteAsync(bytes, _stop.Token);
            }
            await Task.WhenAny(toServer, read);
        }
        catch (Exception)
        {
            // A connection either side closed, or the relay stopped: the other side is closed with it.
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
    }
}
