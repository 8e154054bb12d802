/**
 * Finding the videos of a data set in the layouts users have (lvdm-facts section 7):
 * - ucf101: `UCF-101/<Class>/v_<Class>_gXX_cXX.avi` + `ucfTrainTestlist/` (classInd.txt,
 *   trainlist0{1,2,3}.txt, testlist0{1,2,3}.txt).
 * - sky: `root/{train,test}/<video>/<clip>/*.jpg` (also `sky_train`, `sky_test`).
 * - taichi: `root/{train,test}/**` video files, or frame folders (e.g. `<id>.mp4/0000000.png`).
 * - webvid: a CSV of (video id or path, caption) next to the videos.
 * - folder: any tree of videos / frame folders; first-level subfolders become classes, and a
 *   `<video>.txt` beside a video is its caption.
 * Listing only reads directories and text files; decoding happens later.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { captionForClass } from './classes';
import { parseCsvRecords } from './csv';
import { isImageFile, naturalCompare } from './image';

export type DatasetKind = 'ucf101' | 'sky' | 'taichi' | 'webvid' | 'folder';
export const DATASET_KINDS: readonly DatasetKind[] = ['ucf101', 'sky', 'taichi', 'webvid', 'folder'];
export type Split = 'train' | 'test' | 'all';

export const VIDEO_EXTENSIONS: readonly string[] = ['.avi', '.mp4', '.webm', '.mkv', '.mov', '.m4v', '.mpg', '.mpeg', '.gif'];

export function isVideoFile(name: string): boolean {
  return VIDEO_EXTENSIONS.includes(path.extname(name).toLowerCase());
}

/** One video: a file decoded by ffmpeg, or a folder of frame images. */
export interface VideoEntry {
  /** Stable id: the path relative to the data set root, with '/' separators. */
  id: string;
  /** Video file (absolute path). */
  file?: string;
  /** Frame folder (absolute path) and its image names in natural order. */
  frameDir?: string;
  frameFiles?: string[];
  label?: number;
  className?: string;
  caption?: string;
}

export interface SkipRecord {
  id: string;
  reason: string;
}

export interface VideoList {
  dataset: DatasetKind;
  root: string;
  split: Split;
  entries: VideoEntry[];
  classNames?: string[];
  /** Listed videos whose file does not exist (split-list or CSV rows), reported in stats. */
  missing: SkipRecord[];
}

export interface ListOptions {
  dataset: DatasetKind;
  root: string;
  /** Default 'train' (for folder: 'all'). */
  split?: Split;
  /** UCF-101 split fold 1-3 (default 1). */
  fold?: number;
  /** UCF-101: folder with classInd.txt and the split lists (default: found next to the videos). */
  splitsDir?: string;
  /** WebVid: the CSV file (default: the only *.csv in root). */
  csv?: string;
  /** Called once for a summary of missing listed files (default console.warn). */
  warn?: (message: string) => void;
}

export function listVideos(opts: ListOptions): VideoList {
  const root = path.resolve(opts.root);
  if (!isDir(root)) throw new Error(`${opts.dataset}: data set root ${root} is not a directory`);
  const warn = opts.warn ?? ((m: string) => console.warn(`lvdm data: ${m}`));
  let list: VideoList;
  switch (opts.dataset) {
    case 'ucf101':
      list = listUcf101(root, opts.split ?? 'train', opts.fold ?? 1, opts.splitsDir);
      break;
    case 'sky':
      list = listSky(root, opts.split ?? 'train');
      break;
    case 'taichi':
      list = listTaichi(root, opts.split ?? 'train');
      break;
    case 'webvid':
      list = listWebvid(root, opts.csv);
      break;
    case 'folder':
      list = listFolder(root);
      break;
    default:
      throw new Error(`unknown data set '${String(opts.dataset)}', expected one of ${DATASET_KINDS.join(', ')}`);
  }
  if (list.missing.length > 0) {
    const shown = list.missing.slice(0, 3).map((m) => m.id).join(', ');
    warn(`${list.dataset}: ${list.missing.length} listed video(s) not found on disk, skipped (${shown}${list.missing.length > 3 ? ', ...' : ''})`);
  }
  if (list.entries.length === 0) {
    throw new Error(`${list.dataset}: no videos found under ${root} (split ${list.split}); expected ${LAYOUT_HINT[list.dataset]}`);
  }
  return list;
}

export const LAYOUT_HINT: Record<DatasetKind, string> = {
  ucf101: 'UCF-101/<Class>/v_<Class>_gXX_cXX.avi listed in ucfTrainTestlist/{trainlist0N,testlist0N}.txt',
  sky: '<root>/{train,test}/<video>/<clip>/*.jpg',
  taichi: '<root>/{train,test}/**/*.{mp4,avi,webm} or frame folders of *.png / *.jpg',
  webvid: 'a CSV with a video id or path column and a caption column, plus the video files',
  folder: 'video files (.mp4, .avi, .webm, ...) or folders of frame images anywhere under the root',
};

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function rel(root: string, p: string): string {
  return path.relative(root, p).split(path.sep).join('/');
}

function readDirSorted(dir: string): fs.Dirent[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((d) => !d.name.startsWith('.'))
    .sort((a, b) => naturalCompare(a.name, b.name));
}

/** Image files directly inside `dir`, in natural order (null when none). */
function frameFilesIn(dir: string): string[] | null {
  const files = readDirSorted(dir)
    .filter((d) => !d.isDirectory() && isImageFile(d.name))
    .map((d) => d.name);
  return files.length > 0 ? files : null;
}

/** Video files and frame folders anywhere under `dir` (a folder of images is one video). */
function walkVideos(root: string, dir: string, out: VideoEntry[]): void {
  for (const d of readDirSorted(dir)) {
    const p = path.join(dir, d.name);
    const isDirectory = d.isDirectory() || (d.isSymbolicLink() && isDir(p));
    if (isDirectory) {
      const frames = frameFilesIn(p);
      if (frames) out.push({ id: rel(root, p), frameDir: p, frameFiles: frames });
      else walkVideos(root, p, out);
    } else if (isVideoFile(d.name)) {
      out.push({ id: rel(root, p), file: p });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// UCF-101

export const UCF_SPLIT_FILES = 'classInd.txt, trainlist0{1,2,3}.txt, testlist0{1,2,3}.txt';

function findUcfDirs(root: string, splitsDir?: string): { videos: string; lists: string } {
  const videos = isDir(path.join(root, 'UCF-101')) ? path.join(root, 'UCF-101') : root;
  if (splitsDir) {
    const lists = path.resolve(splitsDir);
    if (!isDir(lists)) throw new Error(`ucf101: split list folder ${lists} does not exist (expected ${UCF_SPLIT_FILES})`);
    return { videos, lists };
  }
  const candidates = [
    path.join(root, 'ucfTrainTestlist'),
    path.join(root, 'UCF101TrainTestSplits-RecognitionTask', 'ucfTrainTestlist'),
    path.join(path.dirname(videos), 'ucfTrainTestlist'),
    path.join(videos, 'ucfTrainTestlist'),
  ];
  const lists = candidates.find(isDir);
  if (!lists) {
    throw new Error(
      `ucf101: split lists not found; looked for ${[...new Set(candidates)].join(', ')} ` +
        `(expected a ucfTrainTestlist/ folder with ${UCF_SPLIT_FILES}, from UCF101TrainTestSplits-RecognitionTask.zip; ` +
        `or pass --splits DIR)`,
    );
  }
  return { videos, lists };
}

/** classInd.txt: lines "<1-based index> <ClassName>". Returns names by 0-based index. */
export function parseClassInd(file: string): string[] {
  if (!isFile(file)) throw new Error(`ucf101: class index ${file} is missing (expected lines "<index> <ClassName>")`);
  const names: string[] = [];
  const lines = fs.readFileSync(file, 'utf8').split(/\r?\n/);
  lines.forEach((line, n) => {
    const t = line.trim();
    if (!t) return;
    const m = /^(\d+)\s+(\S+)$/.exec(t);
    if (!m) throw new Error(`${file}:${n + 1}: expected "<index> <ClassName>", got "${t}"`);
    const idx = Number(m[1]) - 1;
    if (idx < 0 || names[idx] !== undefined) throw new Error(`${file}:${n + 1}: class index ${m[1]} is invalid or repeated`);
    names[idx] = m[2];
  });
  for (let i = 0; i < names.length; i++) {
    if (names[i] === undefined) throw new Error(`${file}: class index ${i + 1} is missing (indices must be 1..N without gaps)`);
  }
  if (names.length === 0) throw new Error(`${file}: no classes listed`);
  return names;
}

function listUcf101(root: string, split: Split, fold: number, splitsDir?: string): VideoList {
  if (![1, 2, 3].includes(fold)) throw new Error(`ucf101: fold must be 1, 2 or 3, got ${fold}`);
  const { videos, lists } = findUcfDirs(root, splitsDir);
  const classIndFile = path.join(lists, 'classInd.txt');
  const classNames = parseClassInd(classIndFile);
  const byName = new Map(classNames.map((n, i) => [n, i]));
  const byLower = new Map(classNames.map((n, i) => [n.toLowerCase(), i]));
  const classOf = (name: string): number | undefined => byName.get(name) ?? byLower.get(name.toLowerCase());
  // Every class folder on disk must be a class of classInd.txt.
  const folderOf = new Map<number, string>();
  for (const d of readDirSorted(videos)) {
    if (!d.isDirectory() || path.join(videos, d.name) === lists || d.name === 'ucfTrainTestlist') continue;
    const c = classOf(d.name);
    if (c === undefined) {
      throw new Error(
        `ucf101: class folder ${path.join(videos, d.name)} is not in ${classIndFile} ` +
          `(expected one of its ${classNames.length} classes, e.g. ${classNames.slice(0, 3).join(', ')})`,
      );
    }
    folderOf.set(c, d.name);
  }
  const listFiles = (split === 'all' ? ['train', 'test'] : [split]).map((s) => path.join(lists, `${s}list0${fold}.txt`));
  const entries: VideoEntry[] = [];
  const missing: SkipRecord[] = [];
  const seen = new Set<string>();
  for (const lf of listFiles) {
    if (!isFile(lf)) throw new Error(`ucf101: split list ${lf} is missing (expected lines "<Class>/v_<Class>_gXX_cXX.avi [label]")`);
    const lines = fs.readFileSync(lf, 'utf8').split(/\r?\n/);
    lines.forEach((line, n) => {
      const t = line.trim();
      if (!t) return;
      const [relPath] = t.split(/\s+/);
      const parts = relPath.split('/');
      if (parts.length !== 2) throw new Error(`${lf}:${n + 1}: expected "<Class>/<video>.avi", got "${t}"`);
      const c = classOf(parts[0]);
      if (c === undefined) throw new Error(`${lf}:${n + 1}: class '${parts[0]}' is not in ${classIndFile}`);
      const id = `${classNames[c]}/${parts[1]}`;
      if (seen.has(id)) return;
      seen.add(id);
      const file = path.join(videos, folderOf.get(c) ?? parts[0], parts[1]);
      if (!isFile(file)) {
        missing.push({ id, reason: `listed in ${path.basename(lf)} but ${file} does not exist` });
        return;
      }
      entries.push({ id, file, label: c, className: classNames[c], caption: captionForClass(classNames[c]) });
    });
  }
  return { dataset: 'ucf101', root, split, entries, classNames, missing };
}

// ---------------------------------------------------------------------------------------------
// Sky Time-lapse and Taichi

function splitDirs(dataset: DatasetKind, root: string, split: Split): string[] {
  const names = split === 'all' ? ['train', 'test'] : [split];
  return names.map((s) => {
    const options = [path.join(root, s), path.join(root, `${dataset}_${s}`)];
    const found = options.find(isDir);
    if (!found) throw new Error(`${dataset}: split folder ${options[0]} not found (expected ${LAYOUT_HINT[dataset]})`);
    return found;
  });
}

function listSky(root: string, split: Split): VideoList {
  const entries: VideoEntry[] = [];
  for (const dir of splitDirs('sky', root, split)) {
    for (const v of readDirSorted(dir)) {
      if (!v.isDirectory()) continue;
      const vdir = path.join(dir, v.name);
      const direct = frameFilesIn(vdir);
      if (direct) {
        entries.push({ id: rel(root, vdir), frameDir: vdir, frameFiles: direct });
        continue;
      }
      for (const c of readDirSorted(vdir)) {
        if (!c.isDirectory()) continue;
        const cdir = path.join(vdir, c.name);
        const frames = frameFilesIn(cdir);
        if (frames) entries.push({ id: rel(root, cdir), frameDir: cdir, frameFiles: frames });
      }
    }
  }
  return { dataset: 'sky', root, split, entries, missing: [] };
}

function listTaichi(root: string, split: Split): VideoList {
  const entries: VideoEntry[] = [];
  for (const dir of splitDirs('taichi', root, split)) walkVideos(root, dir, entries);
  return { dataset: 'taichi', root, split, entries, missing: [] };
}

// ---------------------------------------------------------------------------------------------
// WebVid-style CSV and plain folders

const ID_COLUMNS = ['path', 'video_path', 'file', 'filename', 'video', 'videoid', 'video_id', 'id'];
const CAPTION_COLUMNS = ['caption', 'name', 'text', 'title', 'prompt'];

function listWebvid(root: string, csv?: string): VideoList {
  let csvFile = csv ? path.resolve(csv) : '';
  if (!csvFile) {
    const found = fs.readdirSync(root).filter((f) => f.toLowerCase().endsWith('.csv'));
    if (found.length !== 1) {
      throw new Error(`webvid: ${found.length === 0 ? 'no' : 'several'} *.csv files in ${root}; pass --csv FILE (expected columns: videoid or path, and name or caption)`);
    }
    csvFile = path.join(root, found[0]);
  }
  if (!isFile(csvFile)) throw new Error(`webvid: CSV file ${csvFile} not found`);
  const { header, records } = parseCsvRecords(fs.readFileSync(csvFile, 'utf8'));
  const idCol = ID_COLUMNS.find((c) => header.includes(c));
  const capCol = CAPTION_COLUMNS.find((c) => header.includes(c));
  if (!idCol || !capCol) {
    throw new Error(
      `webvid: ${csvFile} has columns [${header.join(', ')}]; expected a video column (one of ${ID_COLUMNS.join(', ')}) ` +
        `and a caption column (one of ${CAPTION_COLUMNS.join(', ')})`,
    );
  }
  const entries: VideoEntry[] = [];
  const missing: SkipRecord[] = [];
  const exts = ['', '.mp4', '.webm', '.avi', '.mkv', '.mov'];
  for (const r of records) {
    const ref = r[idCol].trim();
    if (!ref) continue;
    const dirs = [root, ...(r.page_dir ? [path.join(root, r.page_dir), path.join(root, 'videos', r.page_dir)] : []), path.join(root, 'videos')];
    let file: string | undefined;
    for (const d of dirs) {
      for (const e of exts) {
        const cand = path.isAbsolute(ref) ? ref + e : path.join(d, ref + e);
        if ((e !== '' || isVideoFile(cand)) && isFile(cand)) {
          file = cand;
          break;
        }
      }
      if (file) break;
    }
    if (!file) {
      missing.push({ id: ref, reason: `row of ${path.basename(csvFile)} has no video file` });
      continue;
    }
    entries.push({ id: rel(root, file), file, caption: r[capCol].trim() });
  }
  return { dataset: 'webvid', root, split: 'all', entries, missing };
}

function listFolder(root: string): VideoList {
  const entries: VideoEntry[] = [];
  walkVideos(root, root, entries);
  // Captions from a sidecar text file: video.mp4 -> video.txt (or video.mp4.txt).
  for (const e of entries) {
    const p = e.file ?? (e.frameDir as string);
    const cands = [p.replace(/\.[^./]+$/, '') + '.txt', p + '.txt'];
    const cap = cands.find(isFile);
    if (cap) e.caption = fs.readFileSync(cap, 'utf8').trim();
  }
  // Classes from first-level subfolders, when every video sits in one; without a sidecar caption
  // a classed video gets 'a video of <class>'.
  let classNames: string[] | undefined;
  if (entries.length > 0 && entries.every((e) => e.id.includes('/'))) {
    classNames = [...new Set(entries.map((e) => e.id.split('/')[0]))].sort(naturalCompare);
    const idx = new Map(classNames.map((n, i) => [n, i]));
    for (const e of entries) {
      e.className = e.id.split('/')[0];
      e.label = idx.get(e.className);
      e.caption ??= captionForClass(e.className);
    }
  }
  return { dataset: 'folder', root, split: 'all', entries, classNames, missing: [] };
}
