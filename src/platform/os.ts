/** The one place tend reads process.platform: everything else asks these. */
export const isLinux = process.platform === 'linux';
export const isPosix = process.platform !== 'win32';
export const platformName: string = process.platform;
