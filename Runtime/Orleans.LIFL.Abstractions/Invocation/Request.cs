using System.ComponentModel;
using System.Threading.Tasks.Sources;

namespace Orleans.LIFL.Invocation;

/// <summary>
/// A call returning <typeparamref name="TResult"/>. The request is itself the caller's awaitable (an
/// <see cref="IValueTaskSource{TResult}"/>), so a call allocates one object besides the grain's own work.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public abstract class Request<TResult> : RequestBase, IValueTaskSource<TResult>, IValueTaskSource
{
    private ManualResetValueTaskSourceCore<TResult> _core;
    private ValueTask<TResult> _pending;
    private TResult? _stagedResult;
    private Exception? _stagedError;
    private Action? _onPendingCompleted;

    /// <summary>Calls the interface method on the target. Generated per method.</summary>
    protected abstract ValueTask<TResult> InvokeInner(object target);

    /// <summary>What the caller awaits.</summary>
    public ValueTask<TResult> AsValueTask() => new(this, _core.Version);

    /// <summary>What the caller awaits when the method returns a plain task.</summary>
    public ValueTask AsVoidValueTask() => new(this, _core.Version);

    internal sealed override void Invoke(object target)
    {
        HandOverBuffers();
        ValueTask<TResult> pending;
        try
        {
            pending = InvokeInner(target);
        }
        catch (Exception error)
        {
            Finish(default!, error);
            return;
        }

        if (pending.IsCompleted)
        {
            FinishFrom(pending);
            return;
        }

        // The grain method is waiting: finish when it does, on whatever thread completes it (normally the
        // activation's own turn, since grain code resumes there).
        _pending = pending;
        pending.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_onPendingCompleted ??= OnPendingCompleted);
    }

    private void OnPendingCompleted()
    {
        var pending = _pending;
        _pending = default;
        FinishFrom(pending);
    }

    private void FinishFrom(ValueTask<TResult> completed)
    {
        TResult result;
        try
        {
            result = completed.GetAwaiter().GetResult();
        }
        catch (Exception error)
        {
            Finish(default!, error);
            return;
        }

        Finish(result, null);
    }

    private void Finish(TResult result, Exception? error)
    {
        OnInvocationFinished(error);
        if (error is null)
        {
            SetResult(result);
        }
        else
        {
            SetError(error);
        }
    }

    internal override void Fail(Exception error) => SetError(error);

    /// <summary>Writes a result of this method's type for a remote caller.</summary>
    internal static void WriteResult(ref Serialization.Writer writer, TResult result) =>
        Serialization.Codec<TResult>.WriteField(ref writer, 0, result);

    internal override bool CompleteFromWire(ref Serialization.Reader reader, CompletionBatch? batch)
    {
        // A value read from the wire is already this caller's own: no copy.
        var result = Serialization.Codec<TResult>.ReadField(ref reader);
        if (!TryClaimCompletion())
        {
            return false;
        }

        if (ResponseSink is { } sink)
        {
            // A forwarded call: pass the result on to the caller in the other process.
            sink.OnResult(this, result, resultIsPrivate: true);
            return true;
        }

        if (batch is not null)
        {
            _stagedResult = result;
            batch.Add(this);
            return true;
        }

        OutsideTurn(static s => s.Item1._core.SetResult(s.result), (this, result));
        return true;
    }

    internal override bool StageError(Exception error)
    {
        if (!TryClaimCompletion())
        {
            return false;
        }

        _stagedError = error;
        return true;
    }

    internal override void RunStagedCompletion()
    {
        if (_stagedError is { } error)
        {
            _core.SetException(error);
        }
        else
        {
            _core.SetResult(_stagedResult!);
        }
    }

    private void SetResult(TResult result)
    {
        if (Method.IsOneWay || !TryClaimCompletion())
        {
            return;
        }

        if (ResponseSink is { } sink)
        {
            sink.OnResult(this, result, resultIsPrivate: false);
            return;
        }

        TResult copy;
        try
        {
            copy = CopyResult(result);
        }
        catch (Exception copyError)
        {
            OutsideTurn(static s => s.Item1._core.SetException(s.copyError), (this, copyError));
            return;
        }

        OutsideTurn(static s => s.Item1._core.SetResult(s.copy), (this, copy));
    }

    private void SetError(Exception error)
    {
        if (!TryClaimCompletion())
        {
            return;
        }

        if (ResponseSink is { } sink)
        {
            sink.OnError(this, error);
            return;
        }

        OutsideTurn(static s => s.Item1._core.SetException(s.error), (this, error));
    }

    TResult IValueTaskSource<TResult>.GetResult(short token) => _core.GetResult(token);

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<TResult>.GetStatus(short token) => _core.GetStatus(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<TResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    /// <summary>Adapts a plain task-returning method to the request's result type.</summary>
    protected static ValueTask<Unit> FromTask(Task task) => FromValueTask(new ValueTask(task));

    /// <summary>Adapts a plain ValueTask-returning method to the request's result type.</summary>
    protected static ValueTask<Unit> FromValueTask(ValueTask task)
    {
        if (task.IsCompletedSuccessfully)
        {
            return default;
        }

        return Await(task);

        static async ValueTask<Unit> Await(ValueTask task)
        {
            await task.ConfigureAwait(false);
            return default;
        }
    }
}
