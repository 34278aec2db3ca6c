using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Orleans.LIFL.Configuration;

namespace Orleans.LIFL.Runtime.Networking;

/// <summary>Opens an outgoing connection: TCP connect, the authenticated handshake, then a running <see cref="Connection"/>.</summary>
internal static class TcpConnector
{
    public static async Task<Connection> ConnectAsync(
        IPEndPoint endpoint,
        string clusterId,
        byte[] secret,
        PeerIdentity self,
        IConnectionOwner owner,
        ConnectionOptions options,
        ILogger logger,
        CancellationToken cancellationToken)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(options.ConnectTimeout + options.HandshakeTimeout);
            await socket.ConnectAsync(endpoint, timeout.Token).ConfigureAwait(false);
            var stream = new NetworkStream(socket, ownsSocket: true);
            var input = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024));
            var peer = await Handshake.InitiateAsync(stream, input, clusterId, secret, self, timeout.Token).ConfigureAwait(false);
            var connection = new Connection(socket, stream, input, peer, owner, options, logger);
            connection.Start();
            return connection;
        }
        catch (Exception error)
        {
            socket.Dispose();
            var reason = error is OperationCanceledException ? "timed out" : error.Message;
            throw new SiloUnavailableException($"Cannot connect to {endpoint}: {reason}");
        }
    }
}
