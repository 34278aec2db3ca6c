using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Text;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Runtime.Networking;

/// <summary>Who a peer is, as established by the handshake, and where its shared pool is (null: it has none).</summary>
internal sealed record PeerIdentity(PeerRole Role, string Id, DataplaneEndpoint? Dataplane = null);

/// <summary>A process's place in its node's dataplane: the node, the shared pool it maps and its slot there.</summary>
internal sealed record DataplaneEndpoint(string NodeId, string PoolName, int Slot)
{
    /// <summary>
    /// Whether <paramref name="other"/> maps the same pool on the same node (descriptors can be exchanged). The same
    /// slot is this very process (two silos of one process share its attachment).
    /// </summary>
    public bool SharesPoolWith(DataplaneEndpoint? other) =>
        other is not null && other.NodeId == NodeId && other.PoolName == PoolName;

    internal void Write(ref Writer writer, uint firstField)
    {
        Codec<string>.WriteField(ref writer, firstField, NodeId);
        Codec<string>.WriteField(ref writer, firstField + 1, PoolName);
        Codec<int>.WriteField(ref writer, firstField + 2, Slot);
    }
}

/// <summary>
/// The opening of every connection. The initiator says who it is and which cluster it wants, with a nonce; the
/// responder answers with its own nonce and an HMAC of both under the cluster secret; the initiator checks it and
/// sends its own HMAC. The secret never travels; each side proves it to the other. A peer with another protocol
/// version, another cluster id or a wrong proof is refused and the connection closed.
/// </summary>
internal static class Handshake
{
    public const ushort ProtocolVersion = 1;
    private const int NonceBytes = 32;
    private const int MaxHandshakeFrame = 4096;

    public static async Task<PeerIdentity> InitiateAsync(
        Stream stream, PipeReader input, string clusterId, byte[] secret, PeerIdentity self, CancellationToken cancellationToken)
    {
        var nonce = RandomNumberGenerator.GetBytes(NonceBytes);
        await SendAsync(stream, FrameKind.Hello, (ref Writer w) =>
        {
            Codec<int>.WriteField(ref w, 0, ProtocolVersion);
            Codec<string>.WriteField(ref w, 1, clusterId);
            Codec<byte>.WriteField(ref w, 2, (byte)self.Role);
            Codec<string>.WriteField(ref w, 3, self.Id);
            Codec<byte[]>.WriteField(ref w, 4, nonce);
            self.Dataplane?.Write(ref w, 5);
            w.WriteEndTag();
        }, cancellationToken).ConfigureAwait(false);

        var (kind, payload) = await ReceiveAsync(input, cancellationToken).ConfigureAwait(false);
        if (kind == FrameKind.Rejected)
        {
            throw new ProtocolException($"the peer refused the connection: {ReadReason(payload)}");
        }

        if (kind != FrameKind.Challenge)
        {
            throw new ProtocolException($"expected a handshake challenge, got {kind}");
        }

        var (responderId, responderNonce, responderProof, responderDataplane) = ReadChallenge(payload);
        var expected = Proof(secret, "responder", clusterId, nonce, responderNonce, self.Id, responderId);
        if (!CryptographicOperations.FixedTimeEquals(expected, responderProof))
        {
            throw new AuthenticationFailedException($"peer {responderId} could not prove it knows the cluster secret");
        }

        var proof = Proof(secret, "initiator", clusterId, nonce, responderNonce, self.Id, responderId);
        await SendAsync(stream, FrameKind.Proof, (ref Writer w) =>
        {
            Codec<byte[]>.WriteField(ref w, 0, proof);
            w.WriteEndTag();
        }, cancellationToken).ConfigureAwait(false);

        (kind, payload) = await ReceiveAsync(input, cancellationToken).ConfigureAwait(false);
        return kind switch
        {
            FrameKind.Accepted => new PeerIdentity(PeerRole.Silo, responderId, responderDataplane),
            FrameKind.Rejected => throw new AuthenticationFailedException($"peer {responderId} refused our proof: {ReadReason(payload)}"),
            _ => throw new ProtocolException($"expected the handshake's acceptance, got {kind}"),
        };
    }

    /// <summary>Answers a connecting peer; returns who it is once it has proven itself.</summary>
    public static async Task<PeerIdentity> RespondAsync(
        Stream stream, PipeReader input, string clusterId, byte[] secret, string selfId, Func<PeerRole, bool> acceptsRole, CancellationToken cancellationToken,
        DataplaneEndpoint? selfDataplane = null)
    {
        var (kind, payload) = await ReceiveAsync(input, cancellationToken).ConfigureAwait(false);
        if (kind != FrameKind.Hello)
        {
            throw new ProtocolException($"expected a handshake hello, got {kind}");
        }

        var hello = ReadHello(payload);
        string? refusal = null;
        if (hello.Version != ProtocolVersion)
        {
            refusal = $"protocol version {hello.Version} is not supported (this silo speaks {ProtocolVersion})";
        }
        else if (hello.ClusterId != clusterId)
        {
            refusal = $"cluster id '{hello.ClusterId}' is not this cluster's";
        }
        else if (!acceptsRole(hello.Role))
        {
            refusal = $"{hello.Role} connections are not accepted on this port";
        }

        if (refusal is not null)
        {
            await RejectAsync(stream, refusal, cancellationToken).ConfigureAwait(false);
            throw new AuthenticationFailedException($"{hello.Role} {hello.Id} refused: {refusal}");
        }

        var nonce = RandomNumberGenerator.GetBytes(NonceBytes);
        var proof = Proof(secret, "responder", clusterId, hello.Nonce, nonce, hello.Id, selfId);
        await SendAsync(stream, FrameKind.Challenge, (ref Writer w) =>
        {
            Codec<string>.WriteField(ref w, 0, selfId);
            Codec<byte[]>.WriteField(ref w, 1, nonce);
            Codec<byte[]>.WriteField(ref w, 2, proof);
            selfDataplane?.Write(ref w, 3);
            w.WriteEndTag();
        }, cancellationToken).ConfigureAwait(false);

        (kind, payload) = await ReceiveAsync(input, cancellationToken).ConfigureAwait(false);
        if (kind != FrameKind.Proof)
        {
            throw new ProtocolException($"expected a handshake proof, got {kind}");
        }

        var theirs = ReadProof(payload);
        var expected = Proof(secret, "initiator", clusterId, hello.Nonce, nonce, hello.Id, selfId);
        if (!CryptographicOperations.FixedTimeEquals(expected, theirs))
        {
            await RejectAsync(stream, "authentication failed", cancellationToken).ConfigureAwait(false);
            throw new AuthenticationFailedException($"{hello.Role} {hello.Id} failed authentication (wrong cluster secret)");
        }

        await SendAsync(stream, FrameKind.Accepted, (ref Writer w) => w.WriteEndTag(), cancellationToken).ConfigureAwait(false);
        return new PeerIdentity(hello.Role, hello.Id, hello.Dataplane);
    }

    public static byte[] SecretBytes(string secret) => Encoding.UTF8.GetBytes(secret);

    private static byte[] Proof(byte[] secret, string side, string clusterId, byte[] initiatorNonce, byte[] responderNonce, string initiatorId, string responderId)
    {
        var message = new ArrayBufferWriter<byte>();
        var writer = new Writer(message);
        Codec<string>.WriteField(ref writer, 0, "lifl/" + ProtocolVersion + "/" + side);
        Codec<string>.WriteField(ref writer, 1, clusterId);
        Codec<byte[]>.WriteField(ref writer, 2, initiatorNonce);
        Codec<byte[]>.WriteField(ref writer, 3, responderNonce);
        Codec<string>.WriteField(ref writer, 4, initiatorId);
        Codec<string>.WriteField(ref writer, 5, responderId);
        writer.Commit();
        return HMACSHA256.HashData(secret, message.WrittenSpan);
    }

    private static Task RejectAsync(Stream stream, string reason, CancellationToken cancellationToken) =>
        SendAsync(stream, FrameKind.Rejected, (ref Writer w) =>
        {
            Codec<string>.WriteField(ref w, 0, reason);
            w.WriteEndTag();
        }, cancellationToken);

    private delegate void PayloadWriter(ref Writer writer);

    private static async Task SendAsync(Stream stream, FrameKind kind, PayloadWriter payload, CancellationToken cancellationToken)
    {
        var buffer = new FrameBuffer(512);
        buffer.BeginFrame(kind);
        var writer = new Writer(buffer);
        payload(ref writer);
        writer.Commit();
        buffer.EndFrame(MaxHandshakeFrame);
        await stream.WriteAsync(buffer.Written, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task<(FrameKind Kind, byte[] Payload)> ReceiveAsync(PipeReader input, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (buffer.Length >= 4)
            {
                var length = FrameReader.ReadLength(buffer);
                if (length < 1 || length > MaxHandshakeFrame)
                {
                    throw new ProtocolException($"a handshake frame of {length} bytes (at most {MaxHandshakeFrame} allowed)");
                }

                if (buffer.Length >= 4 + length)
                {
                    var frame = buffer.Slice(4, length).ToArray();
                    input.AdvanceTo(buffer.GetPosition(4 + length));
                    return ((FrameKind)frame[0], frame[1..]);
                }
            }

            if (result.IsCompleted)
            {
                throw new ProtocolException("the peer closed the connection during the handshake");
            }

            input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private static (int Version, string ClusterId, PeerRole Role, string Id, byte[] Nonce, DataplaneEndpoint? Dataplane) ReadHello(byte[] payload)
    {
        var reader = new Reader(payload);
        var fields = new TagReader(ref reader, WireType.TagDelimited, "hello");
        int version = 0;
        string clusterId = "", id = "";
        PeerRole role = 0;
        byte[] nonce = [];
        string? node = null, pool = null;
        var slot = -1;
        while (fields.Next(ref reader, out var field, out var wire))
        {
            switch (field)
            {
                case 0: version = Codec<int>.ReadValue(ref reader, wire); break;
                case 1: clusterId = Codec<string>.ReadValue(ref reader, wire); break;
                case 2: role = (PeerRole)Codec<byte>.ReadValue(ref reader, wire); break;
                case 3: id = Codec<string>.ReadValue(ref reader, wire); break;
                case 4: nonce = Codec<byte[]>.ReadValue(ref reader, wire); break;
                case 5: node = Codec<string>.ReadValue(ref reader, wire); break;
                case 6: pool = Codec<string>.ReadValue(ref reader, wire); break;
                case 7: slot = Codec<int>.ReadValue(ref reader, wire); break;
                default: reader.SkipField(wire); break;
            }
        }

        if (nonce.Length != NonceBytes || id.Length == 0 || role is not (PeerRole.Silo or PeerRole.Client))
        {
            throw new ProtocolException("a malformed handshake hello");
        }

        return (version, clusterId, role, id, nonce, Dataplane(node, pool, slot));
    }

    private static (string Id, byte[] Nonce, byte[] Proof, DataplaneEndpoint? Dataplane) ReadChallenge(byte[] payload)
    {
        var reader = new Reader(payload);
        var fields = new TagReader(ref reader, WireType.TagDelimited, "challenge");
        string id = "";
        byte[] nonce = [], proof = [];
        string? node = null, pool = null;
        var slot = -1;
        while (fields.Next(ref reader, out var field, out var wire))
        {
            switch (field)
            {
                case 0: id = Codec<string>.ReadValue(ref reader, wire); break;
                case 1: nonce = Codec<byte[]>.ReadValue(ref reader, wire); break;
                case 2: proof = Codec<byte[]>.ReadValue(ref reader, wire); break;
                case 3: node = Codec<string>.ReadValue(ref reader, wire); break;
                case 4: pool = Codec<string>.ReadValue(ref reader, wire); break;
                case 5: slot = Codec<int>.ReadValue(ref reader, wire); break;
                default: reader.SkipField(wire); break;
            }
        }

        return (id, nonce, proof, Dataplane(node, pool, slot));
    }

    /// <summary>A peer's dataplane, when it announced a complete and plausible one.</summary>
    private static DataplaneEndpoint? Dataplane(string? node, string? pool, int slot) =>
        node is { Length: > 0 } && pool is { Length: > 0 } && slot is >= 0 and < 64 ? new DataplaneEndpoint(node, pool, slot) : null;

    private static byte[] ReadProof(byte[] payload)
    {
        var reader = new Reader(payload);
        var fields = new TagReader(ref reader, WireType.TagDelimited, "proof");
        byte[] proof = [];
        while (fields.Next(ref reader, out var field, out var wire))
        {
            if (field == 0)
            {
                proof = Codec<byte[]>.ReadValue(ref reader, wire);
            }
            else
            {
                reader.SkipField(wire);
            }
        }

        return proof;
    }

    private static string ReadReason(byte[] payload)
    {
        try
        {
            var reader = new Reader(payload);
            var fields = new TagReader(ref reader, WireType.TagDelimited, "rejection");
            var reason = "no reason given";
            while (fields.Next(ref reader, out var field, out var wire))
            {
                if (field == 0)
                {
                    reason = Codec<string>.ReadValue(ref reader, wire);
                }
                else
                {
                    reader.SkipField(wire);
                }
            }

            return reason;
        }
        catch (SerializationException)
        {
            return "unreadable reason";
        }
    }
}

/// <summary>A peer could not prove it belongs to the cluster, or refused our proof.</summary>
internal sealed class AuthenticationFailedException(string message) : Exception(message);
