using OnAccess.Tests;

namespace OnAccess.Adversity.Tests;

/// <summary>Waits for the tracker to have applied everything done so far, by observing it, never by sleeping.</summary>
internal static class Settled
{
    private static int _sentinels;

    /// <summary>
    /// Makes a new directory under <paramref name="root"/> holding EICAR and waits until opening it is denied: the
    /// tracker applies changes in order, so every change made before this call has been applied by then.
    /// </summary>
    public static async Task WaitAsync(string root)
    {
        var dir = Path.Combine(root, $".sentinel{Interlocked.Increment(ref _sentinels)}");
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, "eicar.com");
        await File.WriteAllBytesAsync(file, Samples.Eicar);
        await UntilAsync(async () => (await Attacker.OpenAsync(file)).Denied, KernelTestSupport.Timeout);
        Directory.Delete(dir, recursive: true);
        await Task.Yield();
    }

    public static Task UntilAsync(Func<bool> condition, TimeSpan timeout) => UntilAsync(() => Task.FromResult(condition()), timeout);

    /// <summary>Polls <paramref name="condition"/> until it holds or <paramref name="timeout"/> passes (then returns; the caller asserts).</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (!await condition())
        {
            try
            {
                await Task.Delay(50, cts.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
