/** `flotilla flash DEVICE FILE`: one device, over the air, now (or when it next connects). */
import type { FlashAnswer } from './api-types.js';
import { versionOption } from './args.js';
import type { Command } from './command.js';
import { readableFile } from './files.js';
import { paths } from './paths.js';

export const flash: Command = {
  name: 'flash',
  summary: 'Flash one device with a file (a FLIM image, or a JS bundle with --version).',
  args: ['DEVICE', 'FILE'],
  options: {
    version: { type: 'string', value: 'N', help: "the version a JS bundle becomes (a FLIM image carries its own)" },
  },
  notes:
    "A flashed version stays only on a device marked for development or locked to it; any other device is put back to its product's release once the update is done, as on Particle's cloud. Flashing the version a device runs is refused.",
  async run(ctx, v, [device, file]) {
    const version = versionOption(v, 'version', this);
    await readableFile(file);
    const a = await ctx.api.upload<FlashAnswer>('PUT', paths.device(device), { file, fields: { version: version === undefined ? undefined : String(version) } });
    if (ctx.json) ctx.print(a);
    else ctx.out(`${a.id}: ${a.status} (job ${a.job.id}, version ${a.job.version}, ${a.job.state})`);
    return 0;
  },
};
