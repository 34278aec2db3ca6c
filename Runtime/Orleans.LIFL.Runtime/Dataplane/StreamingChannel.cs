using System.Buffers;
using System.Buffers.Binary;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Runtime.Dataplane;

/// <summary>
/// Shared buffers of a link to another node: the message carries a transfer number, and the bytes go ahead of it in
/// chunk frames, written from the sender's shared memory straight to the socket and read from the socket straight
/// into a buffer of the receiver's pool. No managed array ever holds them; each side counts the bytes it copied.
/// </summary>
/// <remarks>
/// On a link from a client (a trainer sending its update) a transfer keeps its place among the process's incoming
/// transfers after its bytes are in, until the call that carries it is answered (<see cref="HoldUntilAnswered"/>):
/// an aggregator that folds an update before answering thus bounds the updates staged in the pool to the admission
/// limit, however many trainers send and however far reception runs ahead of folding. Links between silos release
/// the place when the bytes are in, so that two silos waiting on each other's transfers cannot deadlock.
/// </remarks>
internal sealed class StreamingChannel(SharedBufferPool pool, TransferAdmission admission, bool holdUntilAnswered = false) : IFrameBufferChannel
{
    /// <summary>Bytes per chunk frame.</summary>
    public const int ChunkBytes = 1 << 20;

    private const byte StreamedMode = 2;

    // Written by the connection's write loop only.
    private readonly List<(ulong Transfer, SharedBuffer Buffer)> _frameSends = [];
    private readonly List<(ulong Transfer, SharedBuffer Buffer)> _committedSends = [];
    private ulong _nextTransfer;

    // Touched by the connection's read loop only.
    private readonly Dictionary<ulong, Incoming> _incoming = [];
    private ulong? _admitted; // a transfer admitted by MayReadOn whose first chunk is being taken
    private int _named; // held places of the transfers the message being read names

    /// <summary>Whether a received transfer keeps its admission place until the call carrying it is answered.</summary>
    public bool HoldUntilAnswered { get; } = holdUntilAnswered;

    /// <summary>Whether the frame committed last needs bytes streamed ahead of it.</summary>
    public bool HasSends => _committedSends.Count > 0;

    public void Write(ref Writer writer, SharedBuffer buffer)
    {
        var transfer = ++_nextTransfer;
        Codec<byte>.WriteField(ref writer, 0, StreamedMode);
        Codec<ulong>.WriteField(ref writer, 1, transfer);
        Codec<ulong>.WriteField(ref writer, 2, (ulong)buffer.Length);
        writer.WriteEndTag();

        // Kept alive until its bytes are on the wire.
        _frameSends.Add((transfer, buffer.Share()));
    }

    public SharedBuffer Read(ref Reader reader)
    {
        var fields = new TagReader(ref reader, WireType.TagDelimited, "shared buffer");
        byte mode = 0;
        ulong transfer = 0, length = 0;
        while (fields.Next(ref reader, out var id, out var wire))
        {
            switch (id)
            {
                case 0: mode = Codec<byte>.ReadValue(ref reader, wire); break;
                case 1: transfer = Codec<ulong>.ReadValue(ref reader, wire); break;
                case 2: length = Codec<ulong>.ReadValue(ref reader, wire); break;
                default: reader.SkipField(wire); break;
            }
        }

        if (mode != StreamedMode)
        {
            throw new SerializationException($"A shared buffer in mode {mode} on a link that streams buffers.");
        }

        if (!_incoming.Remove(transfer, out var incoming))
        {
            throw new SerializationException($"A message names streamed buffer #{transfer}, whose bytes did not arrive.");
        }

        if (incoming.Refused is { } refused)
        {
            // Its bytes were read and dropped: the call that needed them is refused, saying why, and the link goes on.
            throw new SerializationException($"Streamed buffer #{transfer} of {incoming.Length:N0} bytes could not be received here: {refused}");
        }

        using var staged = incoming.Buffer!;
        if (incoming.Complete && HoldUntilAnswered)
        {
            _named++;
        }

        if (incoming.Received != incoming.Length || (ulong)incoming.Length != length)
        {
            throw new SerializationException(
                $"Streamed buffer #{transfer} is incomplete: {incoming.Received:N0} of {incoming.Length:N0} bytes arrived, the message says {length:N0}.");
        }

        // A handle made here, so whoever collects this message's buffers owns it.
        return staged.Share();
    }

    /// <summary>
    /// Takes the admission places held by the transfers the message just read names: the caller gives them back with
    /// <see cref="Release"/> when that message's call is answered.
    /// </summary>
    public int TakeNamed()
    {
        var named = _named;
        _named = 0;
        return named;
    }

    /// <summary>Gives back admission places taken with <see cref="TakeNamed"/>.</summary>
    public void Release(int places)
    {
        for (var i = 0; i < places; i++)
        {
            admission.Exit();
        }
    }

    public void CommitFrame()
    {
        _committedSends.AddRange(_frameSends);
        _frameSends.Clear();
    }

    public void AbandonFrame()
    {
        foreach (var (_, buffer) in _frameSends)
        {
            buffer.Dispose();
        }

        _frameSends.Clear();
    }

    /// <summary>Takes the buffers whose bytes must be written before the frame committed last.</summary>
    public List<(ulong Transfer, SharedBuffer Buffer)> TakeSends()
    {
        var sends = new List<(ulong, SharedBuffer)>(_committedSends);
        _committedSends.Clear();
        return sends;
    }

    /// <summary>Writes the chunk frames of one buffer: straight from shared memory to <paramref name="stream"/>.</summary>
    public async Task StreamAsync(Stream stream, ulong transfer, SharedBuffer buffer, CancellationToken cancellationToken)
    {
        var header = new byte[32];
        var memory = buffer.AsMemory<byte>();
        var offset = 0;
        do
        {
            var count = Math.Min(ChunkBytes, memory.Length - offset);
            var headerLength = WriteChunkHeader(header, transfer, (ulong)memory.Length, (ulong)offset, count);
            await stream.WriteAsync(header.AsMemory(0, headerLength), cancellationToken).ConfigureAwait(false);
            await stream.WriteAsync(memory.Slice(offset, count), cancellationToken).ConfigureAwait(false);
            offset += count;
        }
        while (offset < memory.Length);

        pool.CountCopied(memory.Length);
    }

    /// <summary>
    /// Whether the connection may read on into (or take) the chunk frame whose body is, or begins with,
    /// <paramref name="body"/>: a chunk that starts a new transfer needs a place among the process's incoming transfers
    /// (see <see cref="TransferAdmission"/>); the others always may. Asked at the frame's first bytes, a transfer that
    /// must wait holds a read's worth of them instead of the whole chunk, and the rest waits on TCP.
    /// </summary>
    public bool MayReadOn(ReadOnlySequence<byte> body)
    {
        if (Admit(body) != Admission.Wait)
        {
            return true;
        }

        admission.Waited(body.Length);
        return false;
    }

    /// <summary>Takes a place for the transfer a chunk frame's body (or its start) begins, if it needs one and has none.</summary>
    private Admission Admit(ReadOnlySequence<byte> body)
    {
        var reader = new SequenceReader<byte>(body);
        ulong transfer, offset;
        try
        {
            if (!TryReadVarUInt(ref reader, out transfer) || !TryReadVarUInt(ref reader, out _) || !TryReadVarUInt(ref reader, out offset))
            {
                // Too short to tell yet (a frame's start), or malformed: ReceiveChunk refuses that, with its reasons.
                return Admission.Undecided;
            }
        }
        catch (SerializationException)
        {
            return Admission.Undecided;
        }

        if (offset != 0 || _incoming.ContainsKey(transfer) || _admitted == transfer)
        {
            return Admission.Take;
        }

        if (!admission.TryEnter())
        {
            return Admission.Wait;
        }

        _admitted = transfer;
        return Admission.Take;
    }

    /// <summary>Completes when another incoming transfer may start.</summary>
    public Task WhenAdmissibleAsync() => admission.WhenRoomAsync();

    /// <summary>Takes one chunk frame's body (after its kind byte): into the transfer's buffer in this node's pool.</summary>
    public void ReceiveChunk(ReadOnlySequence<byte> body)
    {
        var reader = new SequenceReader<byte>(body);
        if (!TryReadVarUInt(ref reader, out var transfer) || !TryReadVarUInt(ref reader, out var total) || !TryReadVarUInt(ref reader, out var offset))
        {
            throw new SerializationException("A truncated chunk header.");
        }

        var bytes = body.Slice(reader.Position);
        if (total is 0 or > (ulong)SharedBufferPool.MaxBufferLength)
        {
            throw new SerializationException($"A streamed buffer of {total:N0} bytes (1 to {SharedBufferPool.MaxBufferLength:N0} allowed).");
        }

        if (!_incoming.TryGetValue(transfer, out var incoming))
        {
            if (offset != 0)
            {
                throw new SerializationException($"Streamed buffer #{transfer} starts at offset {offset:N0}.");
            }

            if (_admitted != transfer && !admission.TryEnter())
            {
                throw new SerializationException($"Streamed buffer #{transfer} started without room among the incoming transfers.");
            }

            _admitted = null;
            try
            {
                incoming = new Incoming(pool.Rent((long)total), (long)total);
            }
            catch (DataplaneException error)
            {
                // No room in the pool (or no block that large): the transfer is read and dropped, not staged.
                admission.Exit();
                incoming = new Incoming(null, (long)total) { Refused = error.Message };
            }
            catch
            {
                admission.Exit();
                throw;
            }

            _incoming[transfer] = incoming;
        }

        if ((ulong)incoming.Length != total || offset != (ulong)incoming.Received || offset + (ulong)bytes.Length > total)
        {
            throw new SerializationException(
                $"A chunk of streamed buffer #{transfer} at {offset:N0} (+{bytes.Length:N0}) does not follow the {incoming.Received:N0} of {incoming.Length:N0} bytes received.");
        }

        if (incoming.Buffer is { } staging)
        {
            bytes.CopyTo(staging.Span[(int)offset..]);
            pool.CountCopied(bytes.Length);
        }

        incoming.Received += (int)bytes.Length;
        if (incoming.Received == incoming.Length)
        {
            // All here: it waits only for the message that names it, which follows at once.
            incoming.Complete = true;
            if (!HoldUntilAnswered && incoming.Buffer is not null)
            {
                admission.Exit();
            }
        }
    }

    /// <summary>Drops what is still staged or waiting to be sent (the connection closed).</summary>
    public void Close()
    {
        foreach (var incoming in _incoming.Values)
        {
            if (incoming.Buffer is not null && (!incoming.Complete || HoldUntilAnswered))
            {
                admission.Exit();
            }

            incoming.Buffer?.Dispose();
        }

        if (_admitted is not null)
        {
            admission.Exit();
            _admitted = null;
        }

        _incoming.Clear();
        AbandonFrame();
        foreach (var (_, buffer) in _committedSends)
        {
            buffer.Dispose();
        }

        _committedSends.Clear();
    }

    private static int WriteChunkHeader(Span<byte> header, ulong transfer, ulong total, ulong offset, int count)
    {
        var position = 5;
        position += WriteVarUInt(header[position..], transfer);
        position += WriteVarUInt(header[position..], total);
        position += WriteVarUInt(header[position..], offset);
        BinaryPrimitives.WriteInt32LittleEndian(header, position - 4 + count);
        header[4] = (byte)Networking.FrameKind.BufferChunk;
        return position;
    }

    private static int WriteVarUInt(Span<byte> span, ulong value)
    {
        var i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        span[i++] = (byte)value;
        return i;
    }

    private static bool TryReadVarUInt(ref SequenceReader<byte> reader, out ulong value)
    {
        value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (!reader.TryRead(out var b))
            {
                return false;
            }

            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return true;
            }
        }

        throw new SerializationException("A chunk header number longer than 10 bytes.");
    }

    private enum Admission
    {
        Undecided,
        Take,
        Wait,
    }

    /// <summary>A transfer being received: into <see cref="Buffer"/>, or dropped (null) when it was refused.</summary>
    private sealed class Incoming(SharedBuffer? buffer, long length)
    {
        public SharedBuffer? Buffer { get; } = buffer;

        public long Length { get; } = length;

        /// <summary>Why the transfer is dropped instead of staged.</summary>
        public string? Refused { get; init; }

        public int Received { get; set; }

        public bool Complete { get; set; }
    }
}
